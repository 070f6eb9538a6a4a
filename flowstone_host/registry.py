"""Immutable registry snapshots: one registry per plugin kind, and the asset graph.

The host builds a new :class:`Snapshot` for every reload and swaps it in atomically; runs
hold the snapshot they started with. Nothing here mutates after construction, so reads take
no lock.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .config import deep_merge
from .errors import Conflict, NotFound
from .graph import AssetGraph
from .kinds import DEFAULT, KINDS, PLUGIN_KINDS, Kind, kind_info
from .loading.entry import Entry

__all__ = ["AssetGraph", "Entry", "ReaderRegistry", "Registry", "Snapshot", "fallback_entry"]


class Registry:
    """The declarations of one plugin kind, by name.

    Given a ``fallback`` entry (snapshots give one to each kind that has a fallback
    plugin), an undeclared ``default`` resolves to it.
    """

    __slots__ = ("_entries", "_fallback", "kind", "label")

    def __init__(
        self, kind: str, entries: Iterable[Entry] = (), *, fallback: Entry | None = None
    ) -> None:
        self.kind = kind
        self.label = kind_info(kind).label
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
        self._fallback = fallback

    def resolve(self, name: str) -> Entry:
        """Return the entry named ``name``; an undeclared ``default`` is the fallback.

        Raises:
            NotFound: no such name; the message lists the names that exist.
        """
        try:
            return self._entries[name]
        except KeyError:
            if name == DEFAULT and self._fallback is not None:
                return self._fallback
            raise self._not_found(name) from None

    def default(self) -> Entry:
        """Return the declaration named ``default``, or the kind's fallback.

        Raises:
            NotFound: neither exists.
        """
        return self.resolve(DEFAULT)

    @property
    def fallback(self) -> Entry | None:
        """The entry an undeclared ``default`` stands for, if the registry has one."""
        return self._fallback

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


class ReaderRegistry(Registry):
    """Item reader declarations; a reader is built per run with merged config."""

    __slots__ = ()

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        super().__init__(Kind.ITEM_READER, entries)

    def resolve_with_config(self, name: str, asset_config: Mapping[str, Any] | None) -> Entry:
        """Return the entry for ``name`` with ``asset_config`` deep-merged over its config.

        Raises:
            NotFound: no such reader.
        """
        entry = self.resolve(name)
        if not asset_config:
            return entry
        return dataclasses.replace(entry, config=deep_merge(entry.config, asset_config))


def fallback_entry(kind: Kind) -> Entry:
    """Build the entry an undeclared ``default`` of ``kind`` stands for.

    Raises:
        KeyError: ``kind`` has no fallback.
    """
    from .loading import entry_points  # stevedore: only when a fallback is first needed

    info = KINDS[kind]
    if info.fallback is None:
        raise KeyError(f"{kind} has no fallback")
    plugin = entry_points.load_class(info.namespace, info.fallback)
    return Entry(kind, DEFAULT, plugin({}), plugin=info.fallback)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every registry at one moment; attributes are named after the kinds."""

    io_managers: Registry
    item_readers: ReaderRegistry
    resources: Registry
    scatter_coordinators: Registry
    parallel_coordinators: Registry
    routing_coordinators: Registry
    telemetry_emitters: Registry
    executors: Registry
    assets: AssetGraph
    generation: int = 0

    @classmethod
    def build(
        cls,
        entries: Iterable[Entry],
        *,
        assets: AssetGraph | None = None,
        generation: int = 0,
        previous: Snapshot | None = None,
    ) -> Snapshot:
        """Group ``entries`` by kind into a new snapshot.

        Args:
            entries: Plugin entries of any kinds.
            assets: The asset graph (empty when ``None``).
            generation: A counter the host increments on every swap.
            previous: Keep its fallback entries (and so the data of the memory ones).

        Raises:
            Conflict: two entries of one kind share a name.
        """
        by_kind: dict[str, list[Entry]] = {kind: [] for kind in PLUGIN_KINDS}
        for entry in entries:
            by_kind[entry.kind].append(entry)
        registries: dict[str, Any] = {}
        for kind in PLUGIN_KINDS:
            attribute = KINDS[kind].registry
            if kind is Kind.ITEM_READER:
                registries[attribute] = ReaderRegistry(by_kind[kind])
                continue
            kept = getattr(previous, attribute).fallback if previous is not None else None
            if kept is None and KINDS[kind].fallback is not None:
                kept = fallback_entry(kind)
            registries[attribute] = Registry(kind, by_kind[kind], fallback=kept)
        return cls(generation=generation, assets=assets or AssetGraph(), **registries)

    def registry(self, kind: str) -> Registry:
        """Return the registry of a plugin kind (``"IOManager"`` → ``io_managers``).

        Raises:
            KeyError: not a plugin kind (assets are :attr:`assets`, a graph).
        """
        info = kind_info(kind)
        if info.contract is None:
            raise KeyError(f"{kind} is not a plugin kind")
        registry: Registry = getattr(self, info.registry)
        return registry

    def fallbacks(self) -> Iterator[Entry]:
        """Yield the fallback entries an undeclared ``default`` stands for."""
        for kind in PLUGIN_KINDS:
            fallback = self.registry(kind).fallback
            if fallback is not None:
                yield fallback

    def entries(self) -> Iterator[Entry]:
        """Yield every plugin entry of every kind."""
        for kind in PLUGIN_KINDS:
            yield from self.registry(kind)
