"""The context every asset callable receives first: run, partition, resources, logger."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from .. import telemetry

__all__ = ["RunContext"]

#: Loggers by asset name: ``logging`` keeps every logger it made for good anyway, and its
#: lookup takes a lock.
_LOGGERS: dict[str, logging.Logger] = {}


@dataclass(frozen=True, slots=True)
class RunContext:
    """What ``compute(ctx, **inputs)``, ``item(ctx, item)`` and the others are given.

    Attributes:
        run_id: The run materializing this asset.
        asset: The asset being materialized.
        partition: Its partition value (``None`` when unpartitioned).
        resources: Resource handles of the run's leased snapshot, by declaration name; a
            reload replaces them for later runs, never during this one.
        log: A logger named after the asset.
        key: The scatter key of the item (``item`` callables only).
        branch: The parallel branch name (branch callables only).
    """

    run_id: str
    asset: str
    partition: Any = None
    resources: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("flowstone.asset"))
    key: str | None = None
    branch: str | None = None

    @classmethod
    def create(
        cls, run_id: str, asset: str, partition: Any, resources: Mapping[str, Any]
    ) -> RunContext:
        """Return the context of ``asset`` at ``partition`` in run ``run_id``.

        ``resources`` is copied unless it already is a read-only mapping (a run builds its
        own once and shares it across its steps).
        """
        log = _LOGGERS.get(asset)
        if log is None:
            log = _LOGGERS[asset] = logging.getLogger(f"flowstone.asset.{asset}")
        if type(resources) is not MappingProxyType:
            resources = MappingProxyType(dict(resources))
        if cls is not RunContext:
            return cls(run_id, asset, partition, resources, log)
        return _build(run_id, asset, partition, resources, log, None, None)

    def for_item(self, key: str) -> RunContext:
        """Return this context for one scatter item."""
        # Slot by slot (see _build): dataclasses.replace costs several times as much, once
        # per item.
        return _build(
            self.run_id, self.asset, self.partition, self.resources, self.log, key, self.branch
        )

    def for_branch(self, branch: str) -> RunContext:
        """Return this context for one parallel branch."""
        return replace(self, branch=branch)

    def emit(self, name: str, measurements: Mapping[str, Any] | None = None) -> None:
        """Emit ``("flowstone", "asset", name)`` with this run's metadata."""
        metadata = {"run_id": self.run_id, "asset": self.asset, "partition": self.partition}
        telemetry.execute(("flowstone", "asset", name), measurements, metadata)

    def __getstate__(self) -> dict[str, Any]:
        # A process-pool worker gets no resource handles (they hold sockets and locks).
        state = {name: getattr(self, name) for name in self.__slots__}
        state["resources"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["resources"] = MappingProxyType(dict(state["resources"]))
        for name, value in state.items():
            object.__setattr__(self, name, value)


_FIELDS = ("run_id", "asset", "partition", "resources", "log", "key", "branch")
assert RunContext.__slots__ == _FIELDS, "_build sets every field, in this order"
_new = object.__new__
_s0, _s1, _s2, _s3, _s4, _s5, _s6 = (getattr(RunContext, name).__set__ for name in _FIELDS)


def _build(
    run_id: str,
    asset: str,
    partition: Any,
    resources: Mapping[str, Any],
    log: logging.Logger,
    key: str | None,
    branch: str | None,
) -> RunContext:
    """Return ``RunContext(run_id, ..., branch)`` built through its slots: half the cost
    of the frozen dataclass's ``__init__`` (once per step and per scatter item)."""
    ctx: RunContext = _new(RunContext)
    _s0(ctx, run_id)
    _s1(ctx, asset)
    _s2(ctx, partition)
    _s3(ctx, resources)
    _s4(ctx, log)
    _s5(ctx, key)
    _s6(ctx, branch)
    return ctx
