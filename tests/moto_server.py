"""A real S3 and DynamoDB HTTP endpoint for tests and benchmarks: moto in server mode.

The server runs as a separate process on a free loopback port, so boto3 reaches it over
HTTP with ``endpoint_url`` exactly as it reaches AWS or MinIO; nothing in this process is
patched. Stopping it is polite first (SIGTERM, bounded wait), then SIGKILL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from types import TracebackType

__all__ = ["MotoServer"]

START_TIMEOUT_S = 30.0
#: Environment variables whose presence starts coverage in a new Python process.
_COVERAGE_STARTERS = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")
STOP_TIMEOUT_S = 5.0


def _unmeasured(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what starts coverage in a Python child (``make test`` measures
    the processes the tests start): moto is not the code under test, and measuring it
    doubled the time of every AWS test, which waits on this one server."""
    return {k: v for k, v in environ.items() if k not in _COVERAGE_STARTERS}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """A ``moto.server`` child process; use as a context manager or call start/stop.

    Attributes:
        url: ``http://127.0.0.1:PORT`` once started.
    """

    def __init__(self) -> None:
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, attempts: int = 3) -> str:
        """Start the server on a free port and wait until it answers; return its URL.

        A port taken between choosing and binding it makes the child exit; the next
        attempt picks another port.

        Raises:
            RuntimeError: the server did not answer within ``START_TIMEOUT_S``.
        """
        for _ in range(attempts):
            port = _free_port()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_unmeasured(os.environ),
            )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready():
                return self.url
            self.stop()
        raise RuntimeError(f"moto server did not start after {attempts} attempts")

    def _wait_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1):
                    return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        return False

    def reset(self) -> None:
        """Drop every bucket and table the server holds."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        """Stop the server: SIGTERM, a bounded wait, then SIGKILL."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
