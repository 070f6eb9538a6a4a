"""A throwaway PostgreSQL server for tests, benchmarks and ``make pg``.

:func:`postgres_server` yields a DSN: ``FLOWSTONE_TEST_PG_DSN`` when set, else a new cluster
made with the machine's own server binaries (``pg_config --bindir``, else
``/usr/lib/postgresql/*/bin``) in a temporary folder, listening on a free 127.0.0.1 port with
its socket inside that folder, ``fsync=off`` for speed. PostgreSQL refuses to run as root, so
under root the cluster belongs to, and the server runs as, the unprivileged ``nobody``.
The folder is removed when the context exits. Missing binaries raise :class:`ServerError`
with what to install: every CI machine has them, so a test must fail, not skip.

Run ``python tests/postgres_server.py`` to start one by hand; it prints the DSN and serves
until interrupted.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ENV_DSN", "ServerError", "find_bindir", "postgres_server"]

ENV_DSN = "FLOWSTONE_TEST_PG_DSN"
_UNPRIVILEGED = "nobody"


class ServerError(RuntimeError):
    """The throwaway server could not be created or started."""


def find_bindir() -> Path:
    """Return the folder holding ``initdb`` and ``postgres``.

    Raises:
        ServerError: no PostgreSQL server binaries on this machine.
    """
    candidates: list[str] = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout
        candidates.append(out.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder)
    raise ServerError(
        "No PostgreSQL server binaries (initdb, postgres) found via `pg_config --bindir` or "
        "in /usr/lib/postgresql/*/bin. Install them (Debian: apt-get install postgresql) "
        f"or point {ENV_DSN} at a server."
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> dict[str, int]:
    """Return subprocess ``user``/``group`` arguments: ``nobody`` under root, else nothing."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(_UNPRIVILEGED)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _initdb(bindir: Path, data: Path, run_as: dict[str, int]) -> None:
    result = subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        **run_as,  # type: ignore[call-overload]
    )
    if result.returncode != 0:
        raise ServerError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"postgres exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            time.sleep(0.2)  # listening; give the startup process a moment to accept logins
            return
        time.sleep(0.05)
    raise ServerError(f"postgres did not listen on port {port} within 30 s: {log.read_text()}")


def _start(bindir: Path, root: Path, run_as: dict[str, int]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    log = root / "postgres.log"
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(root),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
        "shared_buffers": "128MB",
    }
    args = [str(bindir / "postgres"), "-D", str(root / "data")]
    for name, value in settings.items():
        args += ["-c", f"{name}={value}"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/",
            **run_as,  # type: ignore[call-overload]
        )
    _wait_ready(port, process, log)
    return process, port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # fast shutdown
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the DSN of a PostgreSQL server that lives as long as the context.

    Raises:
        ServerError: no binaries, or the cluster could not be created or started.
    """
    if os.environ.get(ENV_DSN):
        yield os.environ[ENV_DSN]
        return
    bindir = find_bindir()
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix="flowstone-pg-"))
    try:
        if run_as:
            os.chown(root, run_as["user"], run_as["group"])
        _initdb(bindir, root / "data", run_as)
        process, port = _start(bindir, root, run_as)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            _stop(process)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    """Start a server, print its DSN and serve until interrupted."""
    with postgres_server() as dsn:
        print(dsn, flush=True)
        print(f"export FLOWSTONE_PG_DSN={dsn}", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
