"""Running a chunk of scatter items: where an item function meets its items.

The same code runs a chunk on the local executor (a thread or a process of the host) and in
a worker process that took the chunk's job from a queue (:mod:`.remote`). A chunk's
``(key, item)`` pairs travel in a job encoded by :func:`encode_chunk`, with the bounded
codec the isolation channel uses: a hostile queue row cannot make a worker build more than
its budget allows.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from ..errors import ValidationError, normalize
from ..loading.isolation import codec
from ..telemetry import listening, span
from .context import RunContext
from .spans import SCATTER_ITEM, metadata

__all__ = [
    "MAX_CHUNK_TEXT",
    "Chunk",
    "Outcomes",
    "decode_chunk",
    "encode_chunk",
    "run_calls",
    "run_chunk",
]

#: Tokens of scatters being stopped: threads of this process stop between items.
STOPPED: set[str] = set()

Chunk = list[tuple[str, Any]]
Outcomes = tuple[dict[str, Any], dict[str, Any]]

#: Largest encoded chunk a job may carry (its items travel in a queue row).
MAX_CHUNK_TEXT = 16 << 20


def encode_chunk(chunk: Chunk) -> str:
    """Return ``chunk`` as text a job can carry (JSON-safe).

    Raises:
        ValidationError: the text would be over :data:`MAX_CHUNK_TEXT`.
    """
    text = base64.b64encode(codec.encode([[key, item] for key, item in chunk])).decode("ascii")
    if len(text) > MAX_CHUNK_TEXT:
        raise ValidationError(
            f"A chunk of {len(chunk)} scatter items is {len(text)} bytes encoded, over the "
            f"{MAX_CHUNK_TEXT} a queued job may carry: let the reader yield references (row "
            "ids, object keys) and the item function fetch the data."
        )
    return text


def decode_chunk(text: str) -> Chunk:
    """Return the chunk :func:`encode_chunk` wrote.

    Raises:
        ValidationError: the text is not a chunk (a corrupt or forged job), or is over
            :data:`MAX_CHUNK_TEXT`.
    """
    if len(text) > MAX_CHUNK_TEXT:
        raise ValidationError(f"A queued job's items are over {MAX_CHUNK_TEXT} bytes.")
    try:
        pairs = codec.decode(base64.b64decode(text, validate=True))
    except Exception as exc:
        raise ValidationError(f"A queued job's items cannot be decoded: {exc}") from exc
    if not isinstance(pairs, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) for pair in pairs
    ):
        raise ValidationError("A queued job's items are not a list of [key, item] pairs.")
    return [(key, item) for key, item in pairs]


def run_chunk(
    function: Callable[..., Any], ctx: RunContext, chunk: Chunk, token: str, per_call: int = 1
) -> Outcomes:
    """Run ``function(ctx, item)`` over ``chunk``; return ``({key: result}, {key: error})``.

    Runs on the executor (a thread, or a process: then it must stay picklable). Stops
    between items once the scatter's ``token`` is stopped; the items not run are in
    neither mapping. Each item runs in a ``scatter.item`` span when a telemetry handler
    listens for it (whether one does is read once per chunk). With ``per_call`` above 1,
    see :func:`run_calls`.
    """
    if per_call > 1:
        return run_calls(function, ctx, chunk, token, per_call)
    completed: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    if listening(SCATTER_ITEM):
        base = metadata(ctx.run_id, ctx.asset, ctx.partition)
        for key, item in chunk:
            if token in STOPPED:
                break
            try:
                with span(SCATTER_ITEM, {**base, "key": key}) as live:
                    try:
                        completed[key] = function(ctx.for_item(key), item)
                    except Exception as exc:
                        live["error"] = normalize(exc)
                        raise
            except Exception as exc:
                failed[key] = normalize(exc).to_dict()
        return completed, failed
    for key, item in chunk:  # nothing listens for the item spans: none are built
        if token in STOPPED:
            break
        try:
            completed[key] = function(ctx.for_item(key), item)
        except Exception as exc:
            failed[key] = normalize(exc).to_dict()
    return completed, failed


def run_calls(
    function: Callable[..., Any], ctx: RunContext, chunk: Chunk, token: str, per_call: int
) -> Outcomes:
    """Run ``function(ctx, [item, ...])`` over ``chunk``, ``per_call`` items a call.

    ``ctx.key`` is ``None`` (a call has several keys). The call returns one result per
    item, in order; an exception fails every item of the call, and a result that is not a
    list (or tuple) of as many results fails each of them with a ``validation_error``.
    """
    completed: dict[str, Any] = {}
    failed: dict[str, Any] = {}
    traced = listening(SCATTER_ITEM)
    base = metadata(ctx.run_id, ctx.asset, ctx.partition) if traced else {}
    for first in range(0, len(chunk), per_call):
        if token in STOPPED:
            break
        part = chunk[first : first + per_call]
        keys = [key for key, _ in part]
        try:
            if traced:
                with span(SCATTER_ITEM, {**base, "key": keys[0], "keys": len(keys)}) as live:
                    try:
                        results = function(ctx, [item for _, item in part])
                    except Exception as exc:
                        live["error"] = normalize(exc)
                        raise
            else:
                results = function(ctx, [item for _, item in part])
        except Exception as exc:
            error = normalize(exc).to_dict()
            failed.update(dict.fromkeys(keys, error))
            continue
        if not isinstance(results, list | tuple) or len(results) != len(part):
            got = (
                f"{len(results)} results"
                if isinstance(results, list | tuple)
                else repr(type(results).__name__)
            )
            error = ValidationError(
                f"The item function of {ctx.asset!r} (items_per_call) was given {len(part)} "
                f"items and returned {got}: it must return a list of one result per item, "
                "in order.",
                asset=ctx.asset,
            ).to_dict()
            failed.update(dict.fromkeys(keys, error))
            continue
        completed.update(zip(keys, results, strict=True))
    return completed, failed
