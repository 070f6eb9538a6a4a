"""Telemetry spans of the runtime, whose exception events carry the normalized error."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import FlowStoneError, normalize
from ..partitions import partition_key
from ..telemetry import Event, span

__all__ = ["IO_LOAD", "IO_STORE", "MATERIALIZE", "SCATTER_ITEM", "metadata", "traced"]

MATERIALIZE: Event = ("flowstone", "materialize")
SCATTER_ITEM: Event = ("flowstone", "scatter", "item")
IO_LOAD: Event = ("flowstone", "io", "load")
IO_STORE: Event = ("flowstone", "io", "store")


def metadata(run_id: str, asset: str, partition: Any, **extra: Any) -> dict[str, Any]:
    """Return the metadata every runtime span carries (the partition as its canonical key)."""
    key = None if partition is None else partition_key(partition)
    return {"run_id": run_id, "asset": asset, "partition": key, **extra}


@contextmanager
def traced(event: Event, meta: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Run the block in ``span(event, meta)``; an exception leaves normalized.

    The ``exception`` event's metadata has ``error``: the normalized
    :class:`~flowstone_host.FlowStoneError` (the original stays its ``__cause__``).
    """
    with span(event, meta) as live:
        try:
            yield live
        except Exception as exc:
            error = normalize(exc)
            live["error"] = error
            if error is exc:
                raise
            raise error from exc


def error_value(exc: BaseException) -> dict[str, Any]:
    """Return the JSON-safe record of an error, as coordinators store it."""
    error = exc if isinstance(exc, FlowStoneError) else normalize(exc)
    return error.to_dict()
