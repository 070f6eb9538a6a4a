"""What every admin request passes before an endpoint sees it: the admin API's ASGI middleware.

In order: a method no route knows is 501; without a token, a ``Host`` or ``Origin`` that is
not this server's address is 403 (a web page cannot reach the API through DNS rebinding or a
cross-site ``POST``); a ``POST`` needs ``Authorization: Bearer <token>`` when a token is set
(401, compared in constant time); bodies must have a ``Content-Length`` (411) of at most
:data:`MAX_BODY_BYTES` (413) and are read here, under the deadline. The probes
(:data:`~.admin_routes.PROBES`) are then answered at once; other requests share a budget of
``max_requests`` in flight, so a flood of them cannot starve the probes. Each request has a
whole-request deadline, ``request_timeout`` (longer for ``slow_paths``, but never for reading
the body; shorter for :data:`QUICK_PATHS`, which answer at once): past it the answer is
408 when the client was still sending, 503 when the host was still working. Refusals close
the connection.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import PermissionDenied, Timeout, Unavailable, ValidationError
from .admin_routes import PROBES, error_response

__all__ = ["MAX_BODY_BYTES", "QUICK_PATHS", "AdminGuard", "GuardOptions", "is_loopback"]

MAX_BODY_BYTES = 64 * 1024
#: Paths that answer at once, and their deadline when shorter than ``request_timeout``:
#: ``POST /runs`` starts a run and returns (the run goes on past the answer).
QUICK_PATHS: Mapping[str, float] = {"/runs": 5.0}
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LOCAL_NAMES = frozenset({"localhost"})
_CLOSE = {"Connection": "close"}


@dataclass(frozen=True, slots=True)
class GuardOptions:
    """The guard's settings.

    Args:
        bound: The bound ``(host, port)``: ``Host`` and ``Origin`` must name it.
        token: The bearer token ``POST`` requests need; ``None`` for none.
        request_timeout: Seconds a whole request may take.
        max_requests: Requests other than the probes served at once.
        slow_paths: Paths allowed longer than ``request_timeout`` (``/reload``), in seconds.
    """

    bound: tuple[str, int]
    token: str | None = None
    request_timeout: float = 10.0
    max_requests: int = 16
    slow_paths: Mapping[str, float] = field(default_factory=dict)


class AdminGuard:
    """ASGI middleware that applies :class:`GuardOptions` to every HTTP request."""

    def __init__(self, app: ASGIApp, options: GuardOptions) -> None:
        self.app = app
        self.options = options
        self._budget = asyncio.Semaphore(options.max_requests)
        self._own_names = _own_names(options.bound[0])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse, or serve under the deadline and the budget."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        path = scope["path"]
        exchange = _Exchange(receive, send)
        try:
            async with asyncio.timeout(self._deadline(path)):
                async with asyncio.timeout(self.options.request_timeout):  # slow paths too
                    await exchange.read_body()
                if path in PROBES:
                    await self.app(scope, exchange.replay, exchange.send)
                else:
                    async with self._budget:
                        await self.app(scope, exchange.replay, exchange.send)
        except TimeoutError:
            if not exchange.started:
                await self._late(exchange, path)(scope, receive, send)
        except Exception:
            if not exchange.started:  # after a start, the endpoint's handler logged it
                raise

    def _late(self, exchange: _Exchange, path: str) -> Response:
        if not exchange.body_read:
            limit = self.options.request_timeout
            return error_response(
                408, Timeout(f"The request was not sent within {limit:g} s."), _CLOSE
            )
        limit = self._deadline(path)
        return error_response(
            503,
            Unavailable(
                f"The host did not answer {path} within {limit:g} s; it may still be working. "
                "Try again, or look at /status."
            ),
            _CLOSE,
        )

    def _deadline(self, path: str) -> float:
        limit = self.options.slow_paths.get(path, self.options.request_timeout)
        return min(limit, QUICK_PATHS.get(path, limit))

    def _refusal(self, scope: Scope) -> Response | None:
        method, headers = scope["method"], Headers(scope=scope)
        if scope["http_version"] not in ("1.0", "1.1"):
            message = f"HTTP/{scope['http_version']} is not served; use HTTP/1.1."
            return error_response(505, message, _CLOSE)
        if method not in _KNOWN_METHODS:
            return error_response(
                501, f"{method} is not an HTTP method the admin API knows.", _CLOSE
            )
        if self.options.token is None:
            foreign = self._foreign(headers, check_origin=method not in _SAFE_METHODS)
            if foreign is not None:
                return error_response(403, PermissionDenied(foreign), _CLOSE)
        elif method not in _SAFE_METHODS and not self._authorized(headers):
            message = "This endpoint needs 'Authorization: Bearer <token>' with the admin token."
            return error_response(401, message, {"WWW-Authenticate": "Bearer", **_CLOSE})
        return _framing_refusal(headers)

    def _authorized(self, headers: Headers) -> bool:
        assert self.options.token is not None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.options.token.encode()
        )

    def _foreign(self, headers: Headers, *, check_origin: bool) -> str | None:
        """Return why ``Host`` or ``Origin`` is not this server's address, or ``None``."""
        host = headers.get("host")
        if host is not None and not self._is_us(*_split_host(host), default_port=80):
            return (
                f"Host {host!r} is not this server's address. Use http://127.0.0.1:"
                f"{self.options.bound[1]} (or an IP address), or set admin.token."
            )
        origin = headers.get("origin")
        if check_origin and origin is not None:
            parts = urlsplit(origin)
            default = 443 if parts.scheme == "https" else 80
            try:
                port = parts.port
            except ValueError:
                port = -1
            if not self._is_us(parts.hostname or "", port, default_port=default):
                return (
                    f"Requests from the web page at {origin!r} are refused: without an admin "
                    "token only this server's own pages and non-browser clients may POST."
                )
        return None

    def _is_us(self, name: str, port: int | None, *, default_port: int) -> bool:
        if (default_port if port is None else port) != self.options.bound[1]:
            return False
        name = name.lower().rstrip(".")
        if name in self._own_names:
            return True
        try:
            ipaddress.ip_address(name)  # a page cannot rebind an IP literal to us
        except ValueError:
            return False
        return True


def _own_names(bound_host: str) -> frozenset[str]:
    """Host names that mean this server: local names, the bound one, the machine's."""
    names = {*_LOCAL_NAMES, bound_host.lower()}
    if not is_loopback(bound_host):
        hostname = socket.gethostname().lower()
        names |= {hostname, hostname.partition(".")[0]}
    return frozenset(names)


def is_loopback(host: str) -> bool:
    """Return whether ``host`` (an address or ``localhost``) is this machine only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() in _LOCAL_NAMES


def _split_host(value: str) -> tuple[str, int | None]:
    """Split a ``Host`` header into name and port (``-1`` when the port is not a number)."""
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    else:
        name, sep, port_text = value.rpartition(":")
        name, port = (name, port_text) if sep else (value, None)
    if port is None:
        return name, None
    return name, int(port) if port.isascii() and port.isdigit() else -1


def _framing_refusal(headers: Headers) -> Response | None:
    if "transfer-encoding" in headers:
        return error_response(
            411, "Send a Content-Length; chunked bodies are not accepted.", _CLOSE
        )
    if int(headers.get("content-length", "0")) > MAX_BODY_BYTES:  # h11 checked it is a number
        return error_response(
            413, ValidationError(f"Request bodies are limited to {MAX_BODY_BYTES} bytes."), _CLOSE
        )
    return None


class _Exchange:
    """One request's body, read up front, and whether its answer has started."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive, self._send = receive, send
        self.body = b""
        self.body_read = False
        self.started = False
        self._replayed = False

    async def read_body(self) -> None:
        chunks = []
        while True:
            message = await self._receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.body, self.body_read = b"".join(chunks), True

    async def replay(self) -> Message:
        if not self._replayed:
            self._replayed = True  # once only; then wait for a disconnect as usual
            return {"type": "http.request", "body": self.body, "more_body": False}
        return await self._receive()

    async def send(self, message: Message) -> None:
        self.started = True
        await self._send(message)
