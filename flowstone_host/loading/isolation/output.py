"""A child's stdout and stderr, read by the host and turned into log lines tagged with it."""

from __future__ import annotations

import collections
import logging
import threading
from typing import IO

__all__ = ["OutputPump"]

log = logging.getLogger("flowstone_host.plugin")

_MAX_LINE = 8192


class OutputPump:
    """Read a child's stdout and stderr on two daemon threads and log every line.

    stdout lines are logged at INFO, stderr lines at WARNING (both at DEBUG when ``quiet``),
    each as ``[plugin] line`` with ``extra={"plugin": name, "stream": ...}``. Lines longer
    than 8 KiB are split; bytes that are not UTF-8 are replaced. The last lines are kept for
    error reports.

    Args:
        name: The plugin's name, for the log tag.
        streams: ``{"stdout": pipe, "stderr": pipe}`` of the child.
        tail_lines: How many recent lines :meth:`tail` keeps.
        quiet: Log at DEBUG: the caller reports the tail itself (the import probe does).
    """

    def __init__(
        self,
        name: str,
        streams: dict[str, IO[bytes]],
        tail_lines: int = 20,
        *,
        quiet: bool = False,
    ) -> None:
        self.name = name
        self._quiet = quiet
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._threads = [
            threading.Thread(
                target=self._pump,
                args=(stream_name, pipe),
                name=f"{name}-{stream_name}",
                daemon=True,
            )
            for stream_name, pipe in streams.items()
        ]
        for thread in self._threads:
            thread.start()

    def _pump(self, stream_name: str, pipe: IO[bytes]) -> None:
        level = logging.INFO if stream_name == "stdout" else logging.WARNING
        level = logging.DEBUG if self._quiet else level
        extra = {"plugin": self.name, "stream": stream_name}
        with pipe:
            for raw in iter(lambda: pipe.readline(_MAX_LINE), b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._tail.append(line)
                log.log(level, "[%s] %s", self.name, line, extra=extra)

    def tail(self) -> list[str]:
        """Return the most recent lines of both streams, oldest first."""
        return list(self._tail)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for both streams to reach their end."""
        for thread in self._threads:
            thread.join(timeout)
