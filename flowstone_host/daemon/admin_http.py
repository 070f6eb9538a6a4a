"""The admin API's HTTP/1.1 connections: uvicorn's h11 protocol with slow clients cut off.

uvicorn times out idle keep-alive connections, but a peer that dribbles its request head a
byte at a time, or connects and says nothing, is never cut off, and its ``limit_concurrency``
counts open connections, so a crowd of such peers would turn every probe into a 503. Here:

- a request head (request line and headers) must arrive within ``head_timeout`` of the
  connection opening or of the first byte after a keep-alive pause, else the connection is
  closed without an answer;
- at most ``max_connections`` are open at once; one more evicts the oldest connection still
  waiting for a request head (a slow client or an idle keep-alive, never one being
  answered), or is itself closed when every open connection is being answered;
- malformed requests get a JSON error body, like every other refusal of the admin API, and
  a request head longer than ``h11_max_incomplete_event_size`` is a 431.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import ValidationError

__all__ = ["SERVER_NAME", "AdminConfig", "AdminProtocol"]

#: The ``Server`` header of every answer; :mod:`.client` checks it to know it reached us.
SERVER_NAME = "flowstone-host"

log = logging.getLogger(__name__)


class _QuietLogger(logging.Logger):
    """uvicorn's connection logger, with its warnings about bad peers logged at INFO.

    A hostile peer must not flood the warnings; errors (a failing endpoint) stay errors.
    """

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at INFO what uvicorn logs at WARNING."""
        self.info(msg, *args, **kwargs)


_connection_log = _QuietLogger(f"{__name__}.connection")
_connection_log.parent = log


class AdminConfig(uvicorn.Config):
    """uvicorn's config plus the limits :class:`AdminProtocol` enforces.

    Args:
        app: The ASGI application.
        head_timeout: Seconds a request head may take to arrive.
        max_connections: Connections open at once (see the module docstring).
        **options: Passed to :class:`uvicorn.Config`.
    """

    def __init__(
        self, app: Any, *, head_timeout: float, max_connections: int, **options: Any
    ) -> None:
        super().__init__(app, http=AdminProtocol, **options)
        self.head_timeout = head_timeout
        self.max_connections = max_connections
        # Connections waiting for a request head, oldest first (a dict keeps insertion order).
        self.waiting: dict[AdminProtocol, None] = {}


class AdminProtocol(H11Protocol):
    """One admin connection: h11 with a deadline on request heads and a connection cap."""

    config: AdminConfig

    def __init__(self, config: AdminConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.logger = _connection_log
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # received since the current request head began

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the head deadline; make room if the cap is reached."""
        super().connection_made(transport)
        self._arm_head_timer()
        if len(self.connections) > self.config.max_connections:
            victim = next(iter(self.config.waiting))
            log.debug("admin API: too many connections; closing %s", victim.client)
            victim._close()

    def data_received(self, data: bytes) -> None:
        """Feed h11; the head deadline runs from the first byte of a request to its end."""
        if self.conn.their_state is h11.IDLE:
            if self._head_timer is None:
                self._arm_head_timer()
            self._head_bytes += len(data)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()
            self._head_bytes = 0

    def on_response_complete(self) -> None:
        """Count an idle keep-alive connection as evictable, like a slow one."""
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.config.waiting[self] = None

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """Answer a malformed request (431 for an overlong head) with a JSON error; close."""
        limit = self.config.h11_max_incomplete_event_size or 0
        if self._head_bytes > limit > 0:
            status, reason, msg = (
                431,
                b"Request Header Fields Too Large",
                (f"Request heads (request line and headers) are limited to {limit} bytes."),
            )
        else:
            status, reason, msg = 400, b"Bad Request", f"Malformed HTTP request: {msg}"
        body = json.dumps({"error": ValidationError(msg).to_dict()}).encode()
        headers = [
            (b"server", SERVER_NAME.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            for event in (
                h11.Response(status_code=status, headers=headers, reason=reason),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:  # a response was already under way: just close
            pass
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.config.head_timeout, self._head_timed_out)
        self.config.waiting[self] = None

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.config.waiting.pop(self, None)

    def _head_timed_out(self) -> None:
        log.debug("admin API: no request head from %s in time; closing", self.client)
        self._head_timer = None
        self._close()

    def _close(self) -> None:
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self.transport.close()
