"""The frozen, typed model of validated manifests: what the host builds registries from.

Mappings are read-only (:class:`types.MappingProxyType`, lists become tuples) all the way
down; :func:`thaw` turns them back into plain data for output. Equality ignores where a
declaration was written, so a reload can keep every declaration that compares equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from ..config import FieldPath
from ..kinds import DEFAULT, Kind, kind_info
from ..partition_defs import PartitionsDef, partitions_def
from .catalog import EntryPointInfo
from .issues import Position

__all__ = [
    "Asset",
    "Branch",
    "Declaration",
    "ManifestSet",
    "Parallel",
    "Routing",
    "Scatter",
    "freeze",
    "thaw",
]


def freeze(value: Any) -> Any:
    """Return a deeply read-only copy: mappings as ``MappingProxyType``, lists as tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Return a fresh plain copy of a frozen value: ``dict`` and ``list`` all the way down.

    What plugins receive as config, and what JSON and YAML output is made of.
    """
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Declaration:
    """A plugin declaration (every kind except ``Asset``).

    Attributes:
        kind: ``IOManager``, ``ItemReader``, ... (a plugin :class:`~..kinds.Kind`).
        name: ``metadata.name``.
        plugin: Entry-point name in the kind's namespace.
        config: The plugin config: ``spec.config`` merged across layers, then validated,
            coerced and completed with defaults by the plugin's ``config_schema``.
        contract: The accepted contract range, if the declaration gives one.
        isolation: ``"inprocess"``, ``"process"``, or ``None`` for the host's default.
        timeout_s: Per-call time limit, if any.
        env: Variables passed to a process-isolated plugin.
        depends_on: Resource declarations to set up before this one (and tear down after).
        env_paths: Config paths (below ``config``) whose values came from the environment.
        source: Where it is declared (its ``metadata.name``), last layer first.
        sources: Every layer's position, earliest first.
        entry_point: The entry point ``plugin`` resolved to when it was checked, so
            loading does not look it up again.
    """

    kind: str
    name: str
    plugin: str
    config: Mapping[str, Any]
    contract: str | None = None
    isolation: str | None = None
    timeout_s: float | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    depends_on: tuple[str, ...] = ()
    env_paths: frozenset[FieldPath] = field(default=frozenset(), compare=False)
    source: Position | None = field(default=None, compare=False)
    sources: tuple[Position, ...] = field(default=(), compare=False)
    entry_point: EntryPointInfo | None = field(default=None, compare=False)

    @property
    def namespace(self) -> str:
        """The entry-point namespace of the kind, e.g. ``flowstone.io_managers``."""
        return kind_info(self.kind).namespace


@dataclass(frozen=True, slots=True)
class Scatter:
    """How a scatter asset fans out; ``resolved_reader_config`` is what the reader gets."""

    reader: str
    item: str
    coordinator: str = DEFAULT
    executor: str = DEFAULT
    batch_size: int = 100
    max_concurrency: int = 4
    items_per_call: int = 1
    tolerated_failures: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"count": 0})
    )
    gather: str | None = None
    reader_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    resolved_reader_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch of a parallel asset."""

    compute: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class Parallel:
    """The branches of a parallel asset and the callable that joins their results."""

    branches: Mapping[str, Branch]
    join: str
    coordinator: str = DEFAULT
    executor: str = DEFAULT


@dataclass(frozen=True, slots=True)
class Routing:
    """A routing asset's router and its branch-to-asset routes."""

    router: str
    routes: Mapping[str, str]
    coordinator: str = DEFAULT


@dataclass(frozen=True, slots=True)
class Asset:
    """An ``Asset`` document.

    Attributes:
        compute: ``"module:function"``; ``None`` for scatter, parallel and routing assets,
            whose output comes from ``gather``, ``join`` or the routed asset.
        io_config: The asset's own override, as written (interpolated).
        resolved_io_config: What its IO manager gets for it: plugin defaults < the IO
            manager's ``spec.config`` < ``io_config``, validated by the plugin's schema.
        partitions: Its :class:`~flowstone_host.partition_defs.PartitionsDef` (a static
            list, a daily or hourly range, or dimensions of these), lazy however many
            partitions it has; ``None`` when unpartitioned. Given as written (a list, or a
            mapping as in YAML), it is turned into its definition.
    """

    name: str
    compute: str | None = None
    deps: tuple[str, ...] = ()
    io_manager: str = DEFAULT
    io_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    resolved_io_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    partitions: PartitionsDef | None = None
    scatter: Scatter | None = None
    parallel: Parallel | None = None
    routing: Routing | None = None
    description: str = ""
    env_paths: frozenset[FieldPath] = field(default=frozenset(), compare=False)
    source: Position | None = field(default=None, compare=False)
    sources: tuple[Position, ...] = field(default=(), compare=False)

    kind: ClassVar[Kind] = Kind.ASSET

    def __post_init__(self) -> None:
        if self.partitions is not None and not isinstance(self.partitions, PartitionsDef):
            object.__setattr__(self, "partitions", partitions_def(self.partitions))

    def plugins(self) -> tuple[tuple[Kind, str], ...]:
        """Return ``(kind, name)`` of every plugin declaration this asset runs on."""
        needs = [(Kind.IO_MANAGER, self.io_manager)]
        if self.scatter is not None:
            needs += [
                (Kind.ITEM_READER, self.scatter.reader),
                (Kind.SCATTER_COORDINATOR, self.scatter.coordinator),
                (Kind.EXECUTOR, self.scatter.executor),
            ]
        if self.parallel is not None:
            needs += [
                (Kind.PARALLEL_COORDINATOR, self.parallel.coordinator),
                (Kind.EXECUTOR, self.parallel.executor),
            ]
        if self.routing is not None:
            needs.append((Kind.ROUTING_COORDINATOR, self.routing.coordinator))
        return tuple(needs)


@dataclass(frozen=True, slots=True)
class ManifestSet:
    """Every valid declaration and asset, by kind and name.

    Attributes:
        declarations: The valid plugin declarations, in the order they were read.
        assets: The valid assets.
        unloadable: Declarations whose plugin cannot be had (no such entry point, refused
            by the sandbox policy, failed its import probe), with the reason: a host
            reports each one as a failed declaration and loads the rest of its file.
    """

    declarations: Mapping[tuple[str, str], Declaration] = field(
        default_factory=lambda: MappingProxyType({})
    )
    assets: Mapping[str, Asset] = field(default_factory=lambda: MappingProxyType({}))
    unloadable: Mapping[tuple[str, str], tuple[Declaration, str]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def of_kind(self, kind: str) -> tuple[Declaration, ...]:
        """Return the declarations of ``kind``, in the order they were read."""
        return tuple(d for (k, _), d in self.declarations.items() if k == kind)

    def get(self, kind: str, name: str) -> Declaration | None:
        """Return declaration ``name`` of ``kind``, or ``None``."""
        return self.declarations.get((kind, name))
