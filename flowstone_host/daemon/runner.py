"""``flowstone-host run``: the Host plus a watcher, the admin API, health checks and signals.

Start-up order: the watcher first (an edit made during the first load is not missed), then
the first load (a broken manifest is rejected and the rest loads), then the admin API.
SIGHUP reloads. SIGTERM or SIGINT stops: the admin API answers 503 on ``/readyz``, runs in
flight get ``shutdown.grace_s`` to finish, resources are torn down in reverse order of
setup, and the process exits 0. A second SIGTERM or SIGINT exits at once with status 1.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

from ..host.lifecycle import Host
from ..loading.isolation.process import kill_all, sweep_orphans
from ..manifest.host_config import HostConfig
from .address_file import remove_address, write_address
from .admin import AdminServer
from .runs import DaemonRuns
from .watcher import ManifestWatcher

__all__ = ["Daemon"]

log = logging.getLogger(__name__)


class Daemon:
    """One running host process; :meth:`run` blocks until it is told to stop.

    Args:
        config: The validated host config.
        admin_listen: Override of ``admin.listen`` (``127.0.0.1:0`` picks a free port).
    """

    def __init__(self, config: HostConfig, *, admin_listen: str | None = None) -> None:
        self.config = config
        self.host = Host(config)
        self._listen = admin_listen or config.admin.listen
        self._stop = threading.Event()
        self._reload_wanted = threading.Event()
        self._signals = 0
        self.watcher = ManifestWatcher(
            [folder for folder in config.manifest_folders if folder.is_dir()],
            self._on_change,
            debounce_s=config.reload.debounce_ms / 1000,
            rescan_interval_s=config.reload.rescan_interval_s or None,
        )
        self.host.watch_with(self.watcher)
        self.runs = DaemonRuns(self.host)  # POST /runs: runs on this host's leased snapshots
        self.admin = AdminServer(
            self.host, self._listen, config.admin.token or None, runs=self.runs
        )
        self._address: Path | None = None  # state_dir/daemon.json, while the API listens

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; return the exit status (0 after a clean stop)."""
        self._install_signals()
        sweep_orphans()  # work folders that children of killed hosts left behind
        self.watcher.start()
        try:
            self.host.start()
            self.admin.start()
            self._address = write_address(self.config.state_dir, self.admin.url)
            log.info(
                "flowstone-host is running (pid %d); admin API on %s",
                os.getpid(),
                self.admin.url,
                extra={"admin_url": self.admin.url, "pid": os.getpid()},
            )
            self._serve()
        finally:
            self._shutdown()
        return 0

    def _serve(self) -> None:
        interval = self.config.health.interval_s or None
        while not self._stop.is_set():
            if self._reload_wanted.wait(timeout=interval):
                self._reload_wanted.clear()
                if not self._stop.is_set():
                    self.host.reload("signal")
            elif interval:
                self.host.check_health()

    def _shutdown(self) -> None:
        log.info(
            "Stopping: no new work; waiting up to %g s for runs in flight.",
            self.config.shutdown_grace_s,
        )
        self.watcher.stop()
        drained = self.host.stop()
        self.runs.close()  # runs past the grace are asked to stop; resuming them continues
        if self._address is not None:
            remove_address(self._address)
        self.admin.stop()
        log.info("Stopped%s.", "" if drained else " (runs were still in flight)")

    def _on_change(self, trigger: str) -> None:
        if not self._stop.is_set():
            self.host.reload(trigger)

    def _install_signals(self) -> None:
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        log.info("SIGHUP: reloading.")
        self._reload_wanted.set()

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            os.write(2, b"Second stop signal: exiting at once.\n")
            kill_all()  # plugin and probe children lead their own sessions
            os._exit(1)
        log.info("%s: stopping.", signal.Signals(signum).name)
        self._stop.set()
        self._reload_wanted.set()  # wake the main loop
