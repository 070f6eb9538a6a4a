"""Telemetry emitters the manifests declare, attached to and detached from telemetry."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..kinds import Kind
from ..registry import Entry
from ..telemetry import attach_emitter, detach

__all__ = ["attach_emitters", "detach_emitters"]

log = logging.getLogger("flowstone_host.host.lifecycle")  # the host's log, as it has been


def attach_emitters(entries: Iterable[Entry]) -> None:
    """Attach the telemetry emitters among ``entries``, each under the prefix it asks for."""
    for entry in entries:
        if entry.kind == Kind.TELEMETRY_EMITTER:
            attach_emitter(entry.instance, _emitter_id(entry), _prefix(entry))


def detach_emitters(entries: Iterable[Entry]) -> None:
    """Detach the telemetry emitters among ``entries``: they hear no more events."""
    for entry in entries:
        if entry.kind == Kind.TELEMETRY_EMITTER:
            detach(_emitter_id(entry))


def _prefix(entry: Entry) -> tuple[str, ...]:
    """The event prefix an emitter asks for in ``config.prefix``; ``("flowstone",)`` if none
    or not a list of strings."""
    prefix = entry.config.get("prefix", ("flowstone",))
    if isinstance(prefix, list | tuple) and all(isinstance(p, str) for p in prefix):
        return tuple(prefix)
    log.warning(
        "TelemetryEmitter %r: config.prefix is not a list of strings; using flowstone.", entry.name
    )
    return ("flowstone",)


def _emitter_id(entry: Entry) -> str:
    return f"flowstone-host:emitter:{entry.name}:{id(entry.instance)}"
