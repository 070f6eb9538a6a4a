"""The asset graph: assets as nodes, edges from ``deps`` and routing routes.

Immutable once built, so a snapshot's graph is read without locks. Building it checks that
every edge names an asset of the graph and that there is no cycle; a cycle is refused with
its path named (``a -> b -> a``). The topological order lists every asset after all it
depends on, ties broken by name so that plans are reproducible.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from .errors import NotFound, ValidationError
from .manifest.model import Asset

__all__ = ["AssetGraph", "upstream_of"]


def upstream_of(asset: Asset) -> tuple[str, ...]:
    """Return the assets ``asset`` reads: its ``deps``, then its routes' targets."""
    routes = tuple(asset.routing.routes.values()) if asset.routing else ()
    return tuple(dict.fromkeys((*asset.deps, *routes)))


class AssetGraph:
    """Assets by name, with their edges and a topological order.

    Raises (from the constructor):
        ValidationError: an edge names an unknown asset, or the edges form a cycle.
    """

    __slots__ = ("_assets", "_downstream", "_order", "_upstream")

    def __init__(self, assets: Iterable[Asset] = ()) -> None:
        nodes = {asset.name: asset for asset in assets}
        upstream = {name: upstream_of(asset) for name, asset in nodes.items()}
        for name, needs in upstream.items():
            for dep in needs:
                if dep not in nodes:
                    raise ValidationError(f"Asset {name!r} reads {dep!r}, which is not an asset.")
        downstream: dict[str, list[str]] = {name: [] for name in nodes}
        for name, needs in upstream.items():
            for dep in needs:
                downstream[dep].append(name)
        self._assets: Mapping[str, Asset] = MappingProxyType(nodes)
        self._upstream = MappingProxyType(upstream)
        self._downstream = MappingProxyType({k: tuple(sorted(v)) for k, v in downstream.items()})
        self._order = _topological(upstream, self._downstream)

    def resolve(self, name: str) -> Asset:
        """Return the asset named ``name``.

        Raises:
            NotFound: no such asset; the message lists near names.
        """
        try:
            return self._assets[name]
        except KeyError:
            hint = difflib.get_close_matches(str(name), list(self._assets), n=1)
            text = f"No asset named {name!r} (declared: {', '.join(self.names()) or 'none'})."
            raise NotFound(
                text + (f" Did you mean {hint[0]!r}?" if hint else ""), kind="Asset", name=name
            ) from None

    def get(self, name: str) -> Asset | None:
        """Return the asset named ``name``, or ``None``."""
        return self._assets.get(name)

    def upstream(self, name: str) -> tuple[str, ...]:
        """Return the assets ``name`` reads directly (deps, then route targets)."""
        return self._upstream[name]

    def downstream(self, name: str) -> tuple[str, ...]:
        """Return the assets that read ``name`` directly, sorted."""
        return self._downstream[name]

    @property
    def order(self) -> tuple[str, ...]:
        """Every asset, each after all it reads."""
        return self._order

    def plan(self, targets: Iterable[str]) -> tuple[str, ...]:
        """Return ``targets`` and everything they read, transitively, in topological order.

        Raises:
            NotFound: a target is not an asset.
        """
        wanted: set[str] = set()
        stack = [self.resolve(t).name for t in targets]
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self._upstream[name])
        return tuple(name for name in self._order if name in wanted)

    def names(self) -> list[str]:
        """Return the asset names, sorted."""
        return sorted(self._assets)

    def __contains__(self, name: object) -> bool:
        return name in self._assets

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._assets.values())

    def __len__(self) -> int:
        return len(self._assets)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetGraph) and dict(self._assets) == dict(other._assets)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<AssetGraph: {', '.join(self._order) or 'empty'}>"


def _topological(
    upstream: Mapping[str, tuple[str, ...]], downstream: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """Kahn's algorithm with a heap, so ties go by name; a cycle is named."""
    waiting = {name: len(needs) for name, needs in upstream.items()}
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for child in downstream[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    if len(order) < len(upstream):
        stuck = {name for name, count in waiting.items() if count > 0}
        raise ValidationError(f"Assets form a cycle: {_cycle(upstream, stuck)}.")
    return tuple(order)


def _cycle(upstream: Mapping[str, tuple[str, ...]], stuck: set[str]) -> str:
    """Return one cycle among ``stuck`` as ``a -> b -> a``."""
    path: list[str] = []
    seen: dict[str, int] = {}
    name = min(stuck)
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = min(dep for dep in upstream[name] if dep in stuck)
    return " -> ".join([*path[seen[name] :], name])
