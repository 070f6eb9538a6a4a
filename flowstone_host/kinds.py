"""The one table of manifest kinds: what each kind is, defined once.

Every other module reads this table instead of spelling kinds out: a kind's entry-point
namespace and contract (with its versions) come from :data:`~.contracts.versions.CONTRACTS`;
its snapshot registry, its human label, whether the host builds it once (``long_lived``)
or once per run (``per_run``, item readers), and the plugin an undeclared ``default``
stands for (the in-memory IO manager and coordinators, the local executor) are written
here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from .contracts.versions import CONTRACTS, Contract

__all__ = ["DEFAULT", "KINDS", "PLUGIN_KINDS", "Kind", "KindInfo", "has_fallback", "kind_info"]

#: The declaration name a reference falls back to when an asset names none.
DEFAULT = "default"


class Kind(StrEnum):
    """A manifest ``kind``; equal to its spelling in YAML (``Kind.ASSET == "Asset"``)."""

    IO_MANAGER = "IOManager"
    ITEM_READER = "ItemReader"
    SCATTER_COORDINATOR = "ScatterCoordinator"
    PARALLEL_COORDINATOR = "ParallelCoordinator"
    ROUTING_COORDINATOR = "RoutingCoordinator"
    RESOURCE = "Resource"
    EXECUTOR = "Executor"
    TELEMETRY_EMITTER = "TelemetryEmitter"
    ASSET = "Asset"


@dataclass(frozen=True, slots=True)
class KindInfo:
    """One row of the table.

    Attributes:
        kind: The manifest kind.
        registry: The snapshot attribute holding its declarations (``io_managers``).
        label: How messages name one of them (``IO manager``).
        lifecycle: ``long_lived`` (built once per declaration and shared) or ``per_run``
            (the registry holds a factory; each run builds its own, with merged config).
        fallback: The entry-point name an undeclared :data:`DEFAULT` declaration stands
            for, or ``None`` when a ``default`` must be declared.
        contract: The plugin contract, or ``None`` for assets (they are not plugins).
    """

    kind: Kind
    registry: str
    label: str
    lifecycle: Literal["long_lived", "per_run"] = "long_lived"
    fallback: str | None = None
    contract: Contract | None = None

    @property
    def namespace(self) -> str:
        """The entry-point namespace of a plugin kind.

        Raises:
            KeyError: assets have none.
        """
        if self.contract is None:
            raise KeyError(f"{self.kind} is not a plugin kind")
        return self.contract.namespace

    @property
    def per_run(self) -> bool:
        """Whether each run builds its own instance from a registered factory."""
        return self.lifecycle == "per_run"


def _plugin(
    kind: Kind,
    label: str,
    *,
    lifecycle: Literal["long_lived", "per_run"] = "long_lived",
    fallback: str | None = None,
) -> KindInfo:
    contract = CONTRACTS[kind]
    return KindInfo(kind, contract.registry, label, lifecycle, fallback, contract)


KINDS: dict[Kind, KindInfo] = {
    info.kind: info
    for info in (
        _plugin(Kind.IO_MANAGER, "IO manager", fallback="memory"),
        _plugin(Kind.ITEM_READER, "item reader", lifecycle="per_run"),
        _plugin(Kind.SCATTER_COORDINATOR, "scatter coordinator", fallback="memory"),
        _plugin(Kind.PARALLEL_COORDINATOR, "parallel coordinator", fallback="memory"),
        _plugin(Kind.ROUTING_COORDINATOR, "routing coordinator", fallback="memory"),
        _plugin(Kind.RESOURCE, "resource"),
        _plugin(Kind.EXECUTOR, "executor", fallback="local"),
        _plugin(Kind.TELEMETRY_EMITTER, "telemetry emitter"),
        KindInfo(Kind.ASSET, "assets", "asset"),
    )
}

#: The kinds that name a plugin, in the order the table lists them.
PLUGIN_KINDS: tuple[Kind, ...] = tuple(k for k, info in KINDS.items() if info.contract)


def has_fallback(kind: str, name: str) -> bool:
    """Whether ``name`` of ``kind`` may stay undeclared: a ``default`` with a fallback."""
    return name == DEFAULT and kind_info(kind).fallback is not None


def kind_info(kind: str) -> KindInfo:
    """Return the row of ``kind`` (a :class:`Kind` or its spelling).

    Raises:
        KeyError: not a manifest kind.
    """
    return KINDS[Kind(kind)]
