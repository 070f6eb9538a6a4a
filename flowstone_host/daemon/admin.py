"""The admin HTTP API of a running host: health, readiness, status, metrics, reload.

- ``GET /healthz``: 200 ``{"alive": true}`` while the process serves, 503 once it stops.
- ``GET /readyz``: 200 ``{"ready": true, "reasons": []}``, or 503 with the reasons.
- ``GET /status``: 200 with :meth:`HostAPI.status`.
- ``GET /metrics``: the Prometheus text format, from the host's own registry.
- ``POST /reload``: 200 with the report when its ``ok`` is true; 409 with the report when
  it is false (the reload ran and failed); 500 when the host raised instead of reporting.
- ``POST /runs``, ``GET /runs``, ``GET /runs/{id}``, ``POST /runs/{id}/cancel``: runs of
  the daemon (:mod:`.runs_api`), when the server is given ``runs``.

``HEAD`` works wherever ``GET`` does. Every error answer is JSON,
``{"error": FlowStoneError.to_dict()}``. The server is uvicorn (HTTP/1.1 by h11) running a
Starlette application in a thread with its own event loop; the Daemon keeps the signals.
The endpoints and their route table are in :mod:`.admin_routes`, what every request must
pass (token, ``Host``/``Origin``, body size, deadline, budget) in :mod:`.admin_guard`, and
the connection limits (request-head deadline, connection cap) in :mod:`.admin_http`.
Nothing is read from disk, no reverse DNS lookup is made, no server version is sent. The
client side is :mod:`.client`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import anyio.to_thread
import uvicorn

from ..errors import Unavailable
from .address import local_url, parse_listen
from .admin_guard import MAX_BODY_BYTES, AdminGuard, GuardOptions, is_loopback
from .admin_http import SERVER_NAME, AdminConfig
from .admin_routes import RELOAD_TRIGGER, ROUTES, HostAPI, ReloadOutcome, build_app
from .runs import RunsAPI
from .runs_api import RUN_ROUTES

__all__ = [
    "MAX_BODY_BYTES",
    "RELOAD_TRIGGER",
    "AdminServer",
    "HostAPI",
    "ReloadOutcome",
]

log = logging.getLogger(__name__)

#: Longest request head (request line and headers) accepted, in bytes.
MAX_HEAD_BYTES = 32 * 1024
_START_TIMEOUT_S = 10.0
_GRACE_S = 2  # requests in flight get this long at stop()


class AdminServer:
    """Serve the admin API of ``host_api`` on ``listen`` in a background thread.

    Args:
        host_api: The host (anything with the :class:`HostAPI` methods).
        listen: ``"host:port"`` to bind; only that address is bound. Port 0 picks a free port.
        token: When set, ``POST`` requests must carry it as a bearer token; ``None`` or
            ``""`` (the host config's "no token") lets them through, but only with a
            ``Host`` (and ``Origin``, if any) naming this server.
        request_timeout: Seconds a request head may take to arrive, and a whole request
            to be answered (``/reload`` excepted).
        reload_timeout: Seconds ``POST /reload`` may take before the answer is a 503.
        max_connections: Connections open at once; one more evicts the oldest one still
            waiting for its request head (or is closed when none is).
        max_requests: Requests other than ``/healthz`` and ``/readyz`` served at once.
        backlog: Connections the kernel queues before they are accepted.
        runs: The runs the ``/runs`` endpoints start and show; without it they answer 501.

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
        reload_timeout: float = 120.0,
        max_connections: int = 512,
        max_requests: int = 16,
        backlog: int = 2048,
        runs: RunsAPI | None = None,
    ) -> None:
        self._api = host_api
        self._runs = runs
        self._bind = parse_listen(listen)
        self._token = token or None
        self._timeouts = (request_timeout, reload_timeout)
        self._limits = (max_connections, max_requests, backlog)
        self._bound: tuple[str, int] | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; the real port when 0 was asked for.

        Raises:
            RuntimeError: The server is not started.
        """
        if self._bound is None:
            raise RuntimeError("The admin server is not started; call start() first.")
        return self._bound

    @property
    def url(self) -> str:
        """The base URL to reach the server from this machine."""
        return local_url(*self.address)

    def start(self) -> None:
        """Bind and serve in a daemon thread; log the address. Does nothing if started.

        Raises:
            Unavailable: The address cannot be bound (in use, not local, not permitted),
                or the server did not come up.
        """
        if self._server is not None:
            return
        sock = self._listen_socket()
        host, port = sock.getsockname()[:2]
        self._bound = (str(host), int(port))
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(_serve(self._server, sock),),
            name="flowstone-admin-api",
            daemon=True,
        )
        self._thread.start()
        self._wait_started(sock)
        address = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        log.info(
            "Admin API listening on %s (bound to %s)",
            self.url,
            address,
            # not "admin_url": the runner's "running" line carries it, once the host is up
            extra={"admin_address": address},
        )
        if self._token is None and not is_loopback(str(host)):
            log.warning(
                "The admin API listens on %s, beyond this machine, without a token: anyone "
                "who can reach it can reload the host and read its status. Set admin.token "
                "(or FLOWSTONE_ADMIN_TOKEN), or listen on 127.0.0.1.",
                address,
                extra={"admin_address": address},
            )

    def stop(self) -> None:
        """Stop serving and close the socket. Does nothing if not started.

        Requests in flight get a short grace; a host call that is still running is
        abandoned in its worker thread.
        """
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        self._bound = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_GRACE_S + 3)
        if thread.is_alive():
            server.force_exit = True
            thread.join(2)
        if thread.is_alive():
            log.warning("The admin API thread did not stop in time; leaving it behind.")

    def _listen_socket(self) -> socket.socket:
        host, port = self._bind
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(self._limits[2])
        except OSError as exc:
            sock.close()
            raise Unavailable(
                f"Cannot serve the admin API on {local_url(host, port)}: {exc.strerror or exc}. "
                "Is another flowstone-host running? Change admin.listen in the host config "
                "(port 0 picks a free one)."
            ) from exc
        return sock

    def _config(self) -> AdminConfig:
        assert self._bound is not None
        request_timeout, reload_timeout = self._timeouts
        max_connections, max_requests, backlog = self._limits
        options = GuardOptions(
            bound=self._bound,
            token=self._token,
            request_timeout=request_timeout,
            max_requests=max_requests,
            slow_paths={"/reload": reload_timeout},
        )
        _quiet_uvicorn()
        return AdminConfig(
            AdminGuard(build_app(self._api, [*ROUTES, *RUN_ROUTES], self._runs), options),
            head_timeout=request_timeout,
            max_connections=max_connections,
            loop="asyncio",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,  # uvicorn's own; ours names the API, without a version
            headers=[("Server", SERVER_NAME)],
            proxy_headers=False,  # X-Forwarded-For from anyone is not trusted
            backlog=backlog,
            # uvicorn's own limit counts open connections, slow ones too, and would answer
            # 503 to the probes under a slow-client flood; AdminProtocol and AdminGuard limit.
            limit_concurrency=None,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=_GRACE_S,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )

    def _wait_started(self, sock: socket.socket) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise Unavailable("The admin API did not start; see the log for why.")
            time.sleep(0.005)


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    """Serve on ``sock`` until ``server.should_exit``, in this thread's own event loop."""
    # The first worker-thread call loads anyio's backend and starts a thread: do it before
    # the server counts as started, not in the first /status (100 ms and more).
    await anyio.to_thread.run_sync(lambda: None)
    await server.serve([sock])


def _quiet_uvicorn() -> None:
    """Keep uvicorn's start and stop chatter out of the log unless asked for.

    The admin API logs its own address; uvicorn's "Started server process" lines would only
    repeat it. A level set by the operator (``logging.getLogger("uvicorn")``) is kept.
    """
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
