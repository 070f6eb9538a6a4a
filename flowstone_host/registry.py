"""Immutable registry snapshots: one registry per kind, resolved by name without locks.

The host builds a new :class:`Snapshot` for every reload and swaps it in atomically; runs
hold the snapshot they started with. Nothing here mutates after construction, so reads take
no lock.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .config import deep_merge
from .contracts.versions import CONTRACTS
from .errors import Conflict, NotFound

__all__ = ["Entry", "IORegistry", "ReaderRegistry", "Registry", "Snapshot"]

#: Registry attribute name and human label of each manifest kind.
_REGISTRIES: dict[str, tuple[str, str]] = {
    "IOManager": ("io_managers", "IO manager"),
    "ItemReader": ("item_readers", "item reader"),
    "Resource": ("resources", "resource"),
    "ScatterCoordinator": ("scatter_coordinators", "scatter coordinator"),
    "ParallelCoordinator": ("parallel_coordinators", "parallel coordinator"),
    "RoutingCoordinator": ("routing_coordinators", "routing coordinator"),
    "TelemetryEmitter": ("telemetry_emitters", "telemetry emitter"),
    "Executor": ("executors", "executor"),
    "Asset": ("assets", "asset"),
}
assert all(_REGISTRIES[k][0] == c.registry for k, c in CONTRACTS.items())


@dataclass(frozen=True, slots=True)
class Entry:
    """One declaration in a registry.

    Attributes:
        kind: The manifest kind, e.g. ``"IOManager"``.
        name: The declaration's ``metadata.name``.
        instance: The live plugin (or its out-of-process proxy). For item readers, a
            factory (the reader class, or a function spawning an isolated reader): build one
            reader per run with ``entry.instance(entry.config, deps)``. For assets, their
            definition.
        config: The fully merged config, read-only.
        plugin: The entry-point name in the kind's namespace (``"memory"``).
        source: Where it was declared, ``file:line``, or ``None`` for built-in fallbacks.
        metadata: Loader facts (distribution, versions, isolation, target), read-only.
        handle: For resources, what ``setup`` returned: assets reach it as
            ``ctx.resources[name]``. ``None`` for other kinds.
    """

    kind: str
    name: str
    instance: Any
    config: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""
    source: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    handle: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))


class Registry:
    """The declarations of one kind, by name."""

    __slots__ = ("_entries", "kind", "label")

    def __init__(self, kind: str, entries: Iterable[Entry] = ()) -> None:
        self.kind = kind
        self.label = _REGISTRIES[kind][1]
        table: dict[str, Entry] = {}
        for entry in entries:
            if entry.kind != kind:
                raise ValueError(f"{entry.kind} entry {entry.name!r} in the {kind} registry")
            if entry.name in table:
                raise Conflict(
                    f"Two {self.label}s are named {entry.name!r} "
                    f"({table[entry.name].source} and {entry.source}); rename one."
                )
            table[entry.name] = entry
        self._entries: dict[str, Entry] = table  # never mutated after this line

    def resolve(self, name: str) -> Entry:
        """Return the entry named ``name``.

        Raises:
            NotFound: no such name; the message lists the names that exist.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise self._not_found(name) from None

    def get(self, name: str) -> Entry | None:
        """Return the entry named ``name``, or ``None``."""
        return self._entries.get(name)

    def names(self) -> list[str]:
        """Return the declared names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}: {', '.join(self.names()) or 'empty'}>"

    def _not_found(self, name: str) -> NotFound:
        declared = self.names()
        hint = difflib.get_close_matches(str(name), declared, n=1)
        text = f"No {self.label} named {name!r} (declared: {', '.join(declared) or 'none'})."
        if hint:
            text += f" Did you mean {hint[0]!r}?"
        return NotFound(text, kind=self.kind, name=str(name), details={"declared": declared})


class IORegistry(Registry):
    """IO managers, with a ``default`` that falls back to an in-memory manager."""

    __slots__ = ("_fallback",)

    def __init__(self, entries: Iterable[Entry] = (), *, fallback: Entry | None = None) -> None:
        super().__init__("IOManager", entries)
        self._fallback = fallback or _memory_fallback()

    def default(self) -> Entry:
        """Return the IO manager named ``default``, or the built-in memory one."""
        return self._entries.get("default") or self._fallback

    @property
    def fallback(self) -> Entry:
        """The memory IO manager used when no ``default`` is declared."""
        return self._fallback


class ReaderRegistry(Registry):
    """Item reader declarations; a reader is built per run with merged config."""

    __slots__ = ()

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        super().__init__("ItemReader", entries)

    def resolve_with_config(self, name: str, asset_config: Mapping[str, Any] | None) -> Entry:
        """Return the entry for ``name`` with ``asset_config`` deep-merged over its config.

        Raises:
            NotFound: no such reader.
        """
        entry = self.resolve(name)
        if not asset_config:
            return entry
        return dataclasses.replace(entry, config=deep_merge(entry.config, asset_config))


def _memory_fallback() -> Entry:
    from .plugins.memory_io import MemoryIOManager

    return Entry("IOManager", "default", MemoryIOManager({}), plugin="memory")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every registry at one moment; attributes are named after the kinds."""

    io_managers: IORegistry
    item_readers: ReaderRegistry
    resources: Registry
    scatter_coordinators: Registry
    parallel_coordinators: Registry
    routing_coordinators: Registry
    telemetry_emitters: Registry
    executors: Registry
    assets: Registry
    generation: int = 0

    @classmethod
    def build(
        cls, entries: Iterable[Entry], *, generation: int = 0, fallback_io: Entry | None = None
    ) -> Snapshot:
        """Group ``entries`` by kind into a new snapshot.

        Args:
            entries: Entries of any kinds.
            generation: A counter the host increments on every swap.
            fallback_io: Keep this memory IO fallback (and its data) from an older snapshot.

        Raises:
            Conflict: two entries of one kind share a name.
        """
        by_kind: dict[str, list[Entry]] = {kind: [] for kind in _REGISTRIES}
        for entry in entries:
            by_kind[entry.kind].append(entry)
        registries: dict[str, Registry] = {
            attr: Registry(kind, by_kind[kind]) for kind, (attr, _) in _REGISTRIES.items()
        }
        registries["io_managers"] = IORegistry(by_kind["IOManager"], fallback=fallback_io)
        registries["item_readers"] = ReaderRegistry(by_kind["ItemReader"])
        return cls(generation=generation, **registries)  # type: ignore[arg-type]

    def registry(self, kind: str) -> Registry:
        """Return the registry of a manifest kind (``"IOManager"`` → ``io_managers``)."""
        registry: Registry = getattr(self, _REGISTRIES[kind][0])
        return registry

    def entries(self) -> Iterator[Entry]:
        """Yield every entry of every kind."""
        for kind in _REGISTRIES:
            yield from self.registry(kind)
