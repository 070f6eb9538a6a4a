"""The admin API's ``/runs`` endpoints: start, read, list and cancel runs of the daemon.

- ``POST /runs``: start a run (body: ``asset`` or ``assets``, and optionally
  ``partitions``, ``range``, ``missing``, ``concurrency``, ``force``, ``fresh``,
  ``run_id``); 202 ``{"run_id", "status": "running"}`` at once, with ``Location``. 400 for
  a malformed body or an unknown asset, partition or range; 409 when ``run_id`` is running;
  429 when the daemon runs its limit already; 503 when it is stopping.
- ``GET /runs/{id}``: the run, its step counts by asset and status, a page of its steps
  (``?steps_limit=`` up to :data:`~.runs.MAX_STEPS`, ``&steps_offset=``); 404 if unknown.
- ``GET /runs?status=&asset=&limit=&after=``: a page of runs, newest first, and ``next``.
- ``POST /runs/{id}/cancel``: 202; the run stops before its next step or scatter batch and
  is recorded ``cancelled``. 409 when it is finished or run by another process.

The runs are :class:`~.runs.RunsAPI` (``request.app.state.runs``); a server without one
answers 501.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..errors import (
    Conflict,
    FlowStoneError,
    NotFound,
    NotSupported,
    Unavailable,
    ValidationError,
)
from .admin_routes import error_response, json_response
from .run_documents import MAX_STEPS, check_page
from .runs import RunRequest, RunsAPI, TooManyRuns

__all__ = ["RUN_ROUTES"]

T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]


def _status_of(error: FlowStoneError, *, not_found: int = 404) -> int:
    if isinstance(error, TooManyRuns):
        return 429
    if isinstance(error, NotFound):
        return not_found
    for kind, status in ((ValidationError, 400), (Conflict, 409), (Unavailable, 503)):
        if isinstance(error, kind):
            return status
    raise error  # anything else is the handler's 500


async def _runs_call(request: Request, call: Callable[[RunsAPI], T]) -> T:
    runs: RunsAPI | None = getattr(request.app.state, "runs", None)
    if runs is None:
        raise NotSupported("This server runs no assets: it was started without runs.")
    return await anyio.to_thread.run_sync(functools.partial(call, runs), abandon_on_cancel=True)


def _answers(*, not_found: int = 404) -> Callable[[Endpoint], Endpoint]:
    """Turn the request errors an endpoint raises into their JSON answers."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def answered(request: Request) -> Response:
            try:
                response = await endpoint(request)
            except NotSupported as exc:
                return error_response(501, exc)
            except FlowStoneError as exc:
                return error_response(_status_of(exc, not_found=not_found), exc)
            return response

        return answered

    return wrap


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise ValidationError(f"'{name}' is a whole number from {low} to {high} (got {text!r}).")
    return int(text)


@_answers(not_found=400)  # an unknown asset is a bad request, not a missing endpoint
async def start_run(request: Request) -> Response:
    """202 with the new run's id; the run goes on in the daemon."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise ValidationError(f"The body is not JSON: {exc}.") from None
    run = RunRequest.from_json(body)
    started = await _runs_call(request, lambda runs: runs.start(run))
    return json_response(202, started, {"Location": f"/runs/{started['run_id']}"})


@_answers()
async def list_runs(request: Request) -> Response:
    """200 with a page of runs and the ``after`` of the next one."""
    params = request.query_params
    limit = _int(request, "limit", 20, 0, 1_000_000)
    status, asset, after = params.get("status"), params.get("asset"), params.get("after")
    check_page(limit, status)  # before a worker thread is taken
    page = await _runs_call(
        request, lambda runs: runs.page(limit=limit, after=after, status=status, asset=asset)
    )
    return json_response(200, page)


@_answers()
async def show_run(request: Request) -> Response:
    """200 with the run, or 404."""
    run_id = request.path_params["run_id"]
    limit = _int(request, "steps_limit", 100, 0, MAX_STEPS)
    offset = _int(request, "steps_offset", 0, 0, 2**62)
    document = await _runs_call(
        request, lambda runs: runs.get(run_id, steps_limit=limit, steps_offset=offset)
    )
    return json_response(200, document)


@_answers()
async def cancel_run(request: Request) -> Response:
    """202 once the run is told to stop; 404 or 409 when it cannot be."""
    run_id = request.path_params["run_id"]
    return json_response(202, await _runs_call(request, lambda runs: runs.cancel(run_id)))


@_answers()
async def retune_run(request: Request) -> Response:
    """200 with the recorded retune; the running process applies it within a batch."""
    run_id = request.path_params["run_id"]
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise ValidationError(f"The body is not JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise ValidationError("The body is a JSON object: {max_concurrency, tolerated_failures}.")
    return json_response(200, await _runs_call(request, lambda runs: runs.retune(run_id, body)))


RUN_ROUTES: list[BaseRoute] = [
    Route("/runs", start_run, methods=["POST"]),
    Route("/runs", list_runs, methods=["GET"]),
    Route("/runs/{run_id}", show_run, methods=["GET"]),
    Route("/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
    Route("/runs/{run_id}/retune", retune_run, methods=["POST"]),
]
