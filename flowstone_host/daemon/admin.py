"""The admin HTTP API of a running host: health, readiness, status, metrics, reload.

- ``GET /healthz``: 200 ``{"alive": true}`` while the process serves, 503 once it stops.
- ``GET /readyz``: 200 ``{"ready": true, "reasons": []}``, or 503 with the reasons.
- ``GET /status``: 200 with :meth:`HostAPI.status`.
- ``GET /metrics``: the Prometheus text format, from the host's own registry.
- ``POST /reload``: 200 with the report when its ``ok`` is true; 409 with the report when
  it is false (the reload ran and failed); 500 when the host raised instead of reporting.

``HEAD`` works wherever ``GET`` does. ``POST`` needs ``Authorization: Bearer <token>`` when a
token is configured (else 401); ``GET`` never does. Every error answer is JSON,
``{"error": FlowStoneError.to_dict()}``. Against hostile peers: bodies are capped at
:data:`MAX_BODY_BYTES`, socket reads time out, concurrent connections are capped (extras are
closed at once), routes match exact paths (nothing is read from disk), and no reverse DNS
lookup or server version is involved. The client side is :mod:`.admin_client`.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..errors import (
    FlowStoneError,
    InternalError,
    NotFound,
    NotSupported,
    PermissionDenied,
    Unavailable,
    ValidationError,
    normalize,
)
from .address import local_url, parse_listen

__all__ = [
    "MAX_BODY_BYTES",
    "RELOAD_TRIGGER",
    "AdminServer",
    "HostAPI",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
RELOAD_TRIGGER = "http"
"""The ``trigger`` passed to :meth:`HostAPI.reload` by ``POST /reload``."""


class ReloadOutcome(Protocol):
    """A reload's report as the admin server serves it."""

    @property
    def ok(self) -> bool:
        """Whether everything asked for was applied."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe report."""
        ...


class HostAPI(Protocol):
    """What the admin server needs from the host. Every method must be thread-safe."""

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The host's own registry (``HostMetrics.registry``), served on ``/metrics``."""
        ...

    def alive(self) -> bool:
        """Return whether the process is serving (false once it is stopping)."""
        ...

    def ready(self) -> tuple[bool, list[str]]:
        """Return whether the first load finished and every resource is healthy, and why not."""
        ...

    def status(self) -> dict[str, Any]:
        """Return the JSON-safe, already redacted status document."""
        ...

    def reload(self, trigger: str) -> ReloadOutcome:
        """Reload now (or join the reload in progress) and return its report.

        The report's ``ok`` says whether the reload succeeded; it picks 200 or 409.
        """
        ...


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def _json_reply(status: int, data: Mapping[str, Any]) -> _Reply:
    return _Reply(status, json.dumps(data, default=str).encode())


_ERROR_FOR_STATUS: dict[int, Callable[[str], FlowStoneError]] = {
    401: PermissionDenied,
    404: NotFound,
    405: NotSupported,
    501: NotSupported,
    505: NotSupported,
}


def _error_reply(
    status: int, error: FlowStoneError | str, headers: tuple[tuple[str, str], ...] = ()
) -> _Reply:
    if isinstance(error, str):
        default = InternalError if status >= 500 else ValidationError
        error = _ERROR_FOR_STATUS.get(status, default)(error)
    return _Reply(status, json.dumps({"error": error.to_dict()}).encode(), headers=headers)


def _healthz(api: HostAPI) -> _Reply:
    alive = api.alive()
    return _json_reply(200 if alive else 503, {"alive": alive})


def _readyz(api: HostAPI) -> _Reply:
    ready, reasons = api.ready()
    return _json_reply(200 if ready else 503, {"ready": ready, "reasons": list(reasons)})


def _status(api: HostAPI) -> _Reply:
    return _json_reply(200, api.status())


def _metrics(api: HostAPI) -> _Reply:
    return _Reply(200, generate_latest(api.metrics_registry), CONTENT_TYPE_LATEST)


def _reload(api: HostAPI) -> _Reply:
    report = api.reload(RELOAD_TRIGGER)
    return _json_reply(200 if report.ok else 409, report.to_dict())


_Route = Callable[[HostAPI], _Reply]
_ROUTES: dict[str, dict[str, _Route]] = {
    "/healthz": {"GET": _healthz},
    "/readyz": {"GET": _readyz},
    "/status": {"GET": _status},
    "/metrics": {"GET": _metrics},
    "/reload": {"POST": _reload},
}
_ENDPOINTS = ", ".join(f"{next(iter(m))} {p}" for p, m in _ROUTES.items())


class _Handler(BaseHTTPRequestHandler):
    """One request: route by exact path, check body size and token, answer JSON."""

    server: _Server
    server_version = "flowstone-host"
    sys_version = ""
    default_request_version = "HTTP/1.0"  # so even a garbled request gets a status line

    def setup(self) -> None:
        """Wrap the connection, with every read and write under the request timeout."""
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def do_GET(self) -> None:
        """Answer any method: the route table decides what is allowed."""
        route = self._route()
        if route is not None:
            self._send(self._call(route))

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _route(self) -> _Route | None:
        methods = _ROUTES.get(urlsplit(self.path).path)
        if methods is None:
            self.send_error(404, f"No such endpoint. The admin API serves {_ENDPOINTS}.")
            return None
        allowed = sorted({*methods, *(("HEAD",) if "GET" in methods else ())})
        route = methods.get("GET" if self.command == "HEAD" else self.command)
        if route is None:
            message = f"{self.command} is not allowed here; use {' or '.join(allowed)}."
            self._send(_error_reply(405, message, (("Allow", ", ".join(allowed)),)))
            return None
        if self.command == "POST" and not (self._drain_body() and self._authorized()):
            return None
        return route

    def _drain_body(self) -> bool:
        lengths = self.headers.get_all("Content-Length") or ["0"]
        if "Transfer-Encoding" in self.headers:
            self.send_error(411, "Send a Content-Length; chunked bodies are not accepted.")
            return False
        if len(lengths) != 1 or not (lengths[0].isascii() and lengths[0].isdigit()):
            self.send_error(400, "Content-Length must be one non-negative integer.")
            return False
        if int(lengths[0]) > MAX_BODY_BYTES:
            self.send_error(413, f"Request bodies are limited to {MAX_BODY_BYTES} bytes.")
            return False
        self.rfile.read(int(lengths[0]))  # unused, but read so the reply is not reset
        return True

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return True
        message = "This endpoint needs 'Authorization: Bearer <token>' with the admin token."
        self._send(_error_reply(401, message, (("WWW-Authenticate", "Bearer"),)))
        return False

    def _call(self, route: _Route) -> _Reply:
        try:
            return route(self.server.host_api)
        except Exception as exc:
            log.exception("Admin API %s %s failed", self.command, self.path)
            return _error_reply(500, normalize(exc))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer an error as JSON (the base class answers HTML)."""
        self.log_error("code %d, message %s", code, message)
        self.close_connection = True
        self._send(_error_reply(code, message or self.responses.get(code, ("Error",))[0]))

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Log requests at DEBUG instead of printing them to stderr."""
        log.debug("admin API %s: " + format, self.address_string(), *args)

    def log_error(self, format: str, *args: Any) -> None:
        """Log refused requests at INFO: a hostile peer must not flood the warnings."""
        log.info("admin API %s: " + format, self.address_string(), *args)


_Options = tuple[HostAPI, str | None, float, int]  # api, token, request_timeout, max_connections


class _Server(ThreadingHTTPServer):
    """The threading HTTP server with a connection cap and no reverse DNS lookup."""

    daemon_threads = True  # a slow client never holds up stop()
    request_queue_size = 128  # the default 5 drops bursts of probes and scrapes

    def __init__(self, address: tuple[str, int], options: _Options) -> None:
        self.host_api, self.token, self.request_timeout, max_connections = options
        self._slots = threading.BoundedSemaphore(max_connections)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's ``getfqdn`` (a DNS lookup that can hang)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread, or close at once when every slot is taken."""
        if not self._slots.acquire(blocking=False):
            log.debug("admin API: connection from %s refused, too many open", client_address)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection and free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed connection instead of printing a traceback to stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            log.debug("admin API: connection from %s dropped", client_address, exc_info=True)
        else:
            log.exception("admin API: connection from %s failed", client_address)


class AdminServer:
    """Serve the admin API of ``host_api`` on ``listen`` in a background thread.

    Args:
        host_api: The host (anything with the :class:`HostAPI` methods).
        listen: ``"host:port"`` to bind; only that address is bound. Port 0 picks a free port.
        token: When set, ``POST`` requests must carry it as a bearer token; ``None`` or
            ``""`` (the host config's "no token") lets them through.
        request_timeout: Seconds a client may stay silent before its connection is closed.
        max_connections: Connections served at once; more are closed on arrival.

    Raises:
        ConfigError: ``listen`` is malformed.
    """

    def __init__(
        self,
        host_api: HostAPI,
        listen: str,
        token: str | None = None,
        *,
        request_timeout: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        self._bind = parse_listen(listen)
        self._options: _Options = (host_api, token or None, request_timeout, max_connections)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; the real port when 0 was asked for.

        Raises:
            RuntimeError: The server is not started.
        """
        if self._server is None:
            raise RuntimeError("The admin server is not started; call start() first.")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """The base URL to reach the server from this machine."""
        return local_url(*self.address)

    def start(self) -> None:
        """Bind and serve in a daemon thread; log the address. Does nothing if started.

        Raises:
            Unavailable: The address cannot be bound (in use, not local, not permitted).
        """
        if self._server is not None:
            return
        try:
            self._server = _Server(self._bind, self._options)
        except OSError as exc:
            raise Unavailable(
                f"Cannot serve the admin API on {local_url(*self._bind)}: {exc.strerror or exc}. "
                "Is another flowstone-host running? Change admin.listen in the host config "
                "(port 0 picks a free one)."
            ) from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="flowstone-admin-api",
            daemon=True,
        )
        self._thread.start()
        log.info("Admin API listening on %s", self.url, extra={"admin_url": self.url})

    def stop(self) -> None:
        """Stop serving and close the socket. Does nothing if not started."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
