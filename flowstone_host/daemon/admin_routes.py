"""The admin API's endpoints and its route table, as a Starlette application.

The route table (:data:`ROUTES`) is a list of Starlette routes; the runs endpoints
(``POST /runs``, ``GET /runs/{id}``, ...) are :data:`.runs_api.RUN_ROUTES`, served with
them by :class:`~.admin.AdminServer`, and read ``request.app.state.runs``. An endpoint reads the
host from ``request.app.state.host``; one that may block (anything but the probes) calls it
through :func:`host_call`, which runs it in a worker thread, so the event loop, and with it
``/healthz``, is never held up. Every error answer is JSON, ``{"error": FlowStoneError.to_dict()}``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import (
    FlowStoneError,
    InternalError,
    NotFound,
    NotSupported,
    PermissionDenied,
    ValidationError,
    normalize,
)

__all__ = [
    "PROBES",
    "RELOAD_TRIGGER",
    "ROUTES",
    "HostAPI",
    "ReloadOutcome",
    "build_app",
    "error_response",
    "host_call",
]

log = logging.getLogger(__name__)

RELOAD_TRIGGER = "http"
"""The ``trigger`` passed to :meth:`HostAPI.reload` by ``POST /reload``."""

T = TypeVar("T")


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
    """What the admin server needs from the host. Every method must be thread-safe.

    ``alive`` and ``ready`` are called on the event loop and must not block; the others run
    in worker threads.
    """

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


_ERROR_FOR_STATUS: dict[int, Callable[[str], FlowStoneError]] = {
    401: PermissionDenied,
    403: PermissionDenied,
    404: NotFound,
    405: NotSupported,
    501: NotSupported,
    505: NotSupported,
}


def json_response(
    status: int, data: Mapping[str, Any], headers: Mapping[str, str] = {}
) -> Response:
    """Return ``data`` as a JSON answer that no cache keeps."""
    body = json.dumps(data, default=str).encode()
    return Response(
        body, status, {"Cache-Control": "no-store", **headers}, media_type="application/json"
    )


def error_response(
    status: int, error: FlowStoneError | str, headers: Mapping[str, str] = {}
) -> Response:
    """Return ``{"error": ...}``; a message is turned into the error its status implies."""
    if isinstance(error, str):
        default = InternalError if status >= 500 else ValidationError
        error = _ERROR_FOR_STATUS.get(status, default)(error)
    return json_response(status, {"error": error.to_dict()}, headers)


def host(request: Request) -> HostAPI:
    """Return the host the application serves."""
    api: HostAPI = request.app.state.host
    return api


async def host_call(request: Request, call: Callable[[HostAPI], T]) -> T:
    """Run ``call(host)`` in a worker thread, so that it cannot block the event loop.

    Unlike ``run_in_threadpool``, a call still running when the request's deadline passes
    is abandoned (it finishes in its thread, unheard), so the deadline can answer.
    """
    return await anyio.to_thread.run_sync(
        functools.partial(call, host(request)), abandon_on_cancel=True
    )


# -- endpoints -----------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """200 ``{"alive": true}`` while the process serves, 503 once it stops."""
    alive = host(request).alive()
    return json_response(200 if alive else 503, {"alive": alive})


async def readyz(request: Request) -> Response:
    """200 ``{"ready": true, "reasons": []}``, or 503 with the reasons."""
    ready, reasons = host(request).ready()
    return json_response(200 if ready else 503, {"ready": ready, "reasons": list(reasons)})


async def status(request: Request) -> Response:
    """200 with the host's status document."""
    return json_response(200, await host_call(request, lambda api: api.status()))


async def metrics(request: Request) -> Response:
    """The Prometheus text format, from the host's own registry."""
    text = await host_call(request, lambda api: generate_latest(api.metrics_registry))
    return Response(text, 200, {"Cache-Control": "no-store"}, media_type=CONTENT_TYPE_LATEST)


async def reload(request: Request) -> Response:
    """200 with the report when it is ok, 409 with it when the reload ran and failed."""
    report = await host_call(request, lambda api: api.reload(RELOAD_TRIGGER))
    return json_response(200 if report.ok else 409, report.to_dict())


#: Answered on the event loop before anything else, outside the budget of other requests.
PROBES = frozenset({"/healthz", "/readyz"})

ROUTES: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/status", status, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/reload", reload, methods=["POST"]),
]


def _endpoints(routes: list[BaseRoute]) -> str:
    return ", ".join(
        f"{sorted(r.methods - {'HEAD'})[0]} {r.path}"
        for r in routes
        if isinstance(r, Route) and r.methods
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"No such endpoint. The admin API serves {_endpoints(request.app.routes)}."
    elif exc.status_code == 405:
        allowed = sorted(m.strip() for m in headers.get("Allow", "").split(","))
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; use {' or '.join(allowed)}."
    else:
        message = exc.detail
    return error_response(exc.status_code, message, headers)


async def _failure(request: Request, exc: Exception) -> Response:
    log.error("Admin API %s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, normalize(exc))


def build_app(api: HostAPI, routes: list[BaseRoute] = ROUTES, runs: Any = None) -> Starlette:
    """Return the Starlette application serving ``routes`` for ``api`` (and ``runs``, the
    :class:`~.runs.RunsAPI` the ``/runs`` endpoints use, if any)."""
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _failure},
    )
    app.router.redirect_slashes = False  # "/status/" is not "/status": 404, not a redirect
    app.state.host = api
    app.state.runs = runs
    return app
