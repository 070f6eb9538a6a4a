"""``flowstone-host run``: the Host plus a watcher, the admin API, health checks and signals.

Start-up order: the watcher first (an edit made during the first load is not missed), then
the admin API (``/healthz`` answers, ``/readyz`` says the first load has not finished), then
the first load (a broken manifest is rejected and the rest loads); the "running" log line
follows it. SIGHUP reloads. SIGTERM or SIGINT stops: at once ``/healthz`` and ``/readyz``
answer 503 and a plugin ``setup()`` being waited for is given up on; runs in flight get
``shutdown.grace_s`` to finish, resources are torn down in reverse order of setup, and the
process exits 0. The whole stop takes at most ``shutdown.grace_s`` whatever a plugin does:
a teardown still running then is left behind, and past the deadline the process exits
with status 1. A second SIGTERM or SIGINT exits at once with status 1.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
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
        self._deadline: float | None = None  # time.monotonic() by which a stop is done
        self._stopped = threading.Event()  # the stop finished
        self.watcher = ManifestWatcher.for_config(config, self._on_change)
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
            self.admin.start()  # answers /healthz while a slow first load runs
            self._address = write_address(self.config.state_dir, self.admin.url)
            self.host.start()
            if self._stop.is_set():
                return 0
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
        if self._deadline is None:
            self._deadline = time.monotonic() + self.config.shutdown_grace_s
        margin = min(0.25, self.config.shutdown_grace_s / 4)  # for what follows the host
        drained = self.host.stop(deadline=self._deadline - margin)
        self.runs.close()  # runs past the grace are asked to stop; resuming them continues
        if self._address is not None:
            remove_address(self._address)
        self.admin.stop()
        log.info("Stopped%s.", "" if drained else " (runs were still in flight)")
        self._stopped.set()

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
            kill_all()  # plugin and probe children lead their own process groups
            os._exit(1)
        log.info("%s: stopping.", signal.Signals(signum).name)
        grace = self.config.shutdown_grace_s
        self._deadline = time.monotonic() + grace
        self.host.begin_stop()  # not ready, from now on
        self._stop.set()
        self._reload_wanted.set()  # wake the main loop
        watchdog = threading.Thread(
            target=self._exit_at, args=(self._deadline,), name="flowstone-stop", daemon=True
        )
        watchdog.start()

    def _exit_at(self, deadline: float) -> None:
        """Exit if the process is still here at ``deadline``: with status 1 if the stop
        had not finished (a plugin holding it up), 0 if it had (a thread a plugin left
        keeping the interpreter from exiting)."""
        time.sleep(max(deadline - time.monotonic(), 0.0))
        done = self._stopped.is_set()
        if not done:
            log.error("The stop took longer than shutdown.grace_s; exiting now.")
        for handler in logging.getLogger().handlers:
            handler.flush()
        kill_all()
        os._exit(0 if done else 1)
