"""Which partitions an asset has, which a step reads of its dependencies, and choosing them.

- An asset's ``partitions`` is ``None`` (one partition, ``None``) or a lazy
  :class:`~flowstone_host.partition_defs.PartitionsDef` (a static list, a daily or hourly
  range, or dimensions of these); nothing here lists all of them unless asked to.
- A step ``(asset, p)`` reads a dependency ``d`` at: ``None`` when ``d`` is unpartitioned;
  ``p`` when ``p`` is one of ``d``'s partitions; otherwise every partition of ``d`` (a
  fan-in, at most :data:`FAN_IN_LIMIT`), loaded as ``{partition value: value}``.
  ``validate`` refuses the dependencies that would fall between these (see
  :mod:`flowstone_host.manifest.asset_checks`).
- :func:`select` and :func:`missing` stream the partitions a run or a listing wants, a
  page at a time: a range ``A..B`` by position, and the ones not stored by asking the IO
  manager ``exists`` a batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..boundary import call
from ..errors import ValidationError
from ..manifest.asset_checks import FAN_IN_LIMIT
from ..manifest.model import Asset, thaw
from ..partition_defs import PartitionsDef
from ..registry import Snapshot

__all__ = [
    "BATCH",
    "FAN_IN_LIMIT",
    "expand",
    "fan_in",
    "missing",
    "page",
    "parse",
    "parse_range",
    "reads",
    "select",
    "spell",
]

#: Partitions checked against the IO manager per batch when looking for missing ones.
BATCH = 500


def expand(asset: Asset) -> list[Any]:
    """Return every partition value of ``asset`` (``[None]`` when unpartitioned).

    Raises:
        ValidationError: it has more than :data:`FAN_IN_LIMIT` (page with :func:`select`).
    """
    definition = asset.partitions
    if definition is None:
        return [None]
    fixed = definition.fixed()
    if fixed.count() > FAN_IN_LIMIT:
        raise ValidationError(
            f"Asset {asset.name!r} has {fixed.count()} partitions, more than {FAN_IN_LIMIT} "
            "can be read at once; read them a page at a time, or partition the asset that "
            "reads them the same way.",
            asset=asset.name,
        )
    return list(fixed)


def fan_in(dep: Asset, partition: Any) -> bool:
    """Whether a step at ``partition`` reads every partition of ``dep``."""
    return dep.partitions is not None and partition not in dep.partitions


def reads(dep: Asset, partition: Any) -> list[Any]:
    """Return the partitions of ``dep`` a step at ``partition`` reads."""
    if dep.partitions is None:
        return [None]
    return expand(dep) if fan_in(dep, partition) else [partition]


def spell(asset: Asset, value: Any) -> str:
    """How a partition of ``asset`` is written on a command line (``none``: unpartitioned)."""
    return "none" if asset.partitions is None else asset.partitions.spell(value)


def parse(asset: Asset, texts: Iterable[str]) -> list[Any]:
    """Return the partition values ``texts`` name, as typed on a command line.

    A text is a value written as :func:`spell` writes it (``2024-01-01``, ``7``,
    ``region=eu,day=2024-01-01``) or its canonical key.

    Raises:
        ValidationError: a text names no partition of ``asset``; the message lists the
            nearest ones.
    """
    definition = asset.partitions
    found: list[Any] = []
    for text in texts:
        if definition is None:
            if text != "none":
                raise ValidationError(
                    f"Asset {asset.name!r} is not partitioned; drop --partition {text!r}.",
                    asset=asset.name,
                )
            found.append(None)
            continue
        try:
            found.append(definition.parse(text))
        except ValidationError as exc:
            raise ValidationError(
                f"Asset {asset.name!r}: {exc.message}", details=exc.details, asset=asset.name
            ) from None
    return found


def parse_range(asset: Asset, text: str) -> tuple[int, int]:
    """Return the positions ``[start, stop)`` that ``A..B`` names (both ends included;
    ``A..`` runs to the last partition, ``..B`` from the first).

    Raises:
        ValidationError: not a range of ``asset``'s partitions.
    """
    definition = _partitioned(asset)
    fixed = definition.fixed()
    places = [i for i in range(len(text) - 1) if text.startswith("..", i)]
    if not places:
        raise ValidationError(
            f"A partition range is FIRST..LAST (e.g. {_example(fixed)}); got {text!r}.",
            asset=asset.name,
        )
    problem: ValidationError | None = None
    for place in places:
        first, last = text[:place], text[place + 2 :]
        try:
            start = fixed.position(fixed.parse(first)) if first else 0
            stop = fixed.position(fixed.parse(last)) + 1 if last else fixed.count()
        except ValidationError as exc:
            problem = problem or exc
            continue
        if stop <= start:
            raise ValidationError(
                f"Partition range {text!r} of {asset.name!r} ends before it starts.",
                asset=asset.name,
            )
        return start, stop
    assert problem is not None
    raise ValidationError(
        f"Asset {asset.name!r}: {problem.message}", details=problem.details, asset=asset.name
    )


def select(asset: Asset, span: tuple[int, int] | None = None) -> Iterator[Any]:
    """Yield the partitions of ``asset`` (at positions ``span``), one at a time."""
    if asset.partitions is None:
        yield None
        return
    fixed = asset.partitions.fixed()
    start, stop = span if span is not None else (0, None)
    yield from fixed.iter_from(start, stop)


def missing(
    snapshot: Snapshot, asset: Asset, candidates: Iterable[Any], batch: int = BATCH
) -> Iterator[Any]:
    """Yield the ``candidates`` that ``asset``'s IO manager does not store, checking a batch
    at a time (at most ``batch`` values held)."""
    entry = snapshot.io_managers.resolve(asset.io_manager)
    opts = thaw(asset.resolved_io_config)
    chunk: list[Any] = []
    for value in candidates:
        chunk.append(value)
        if len(chunk) >= batch:
            yield from _absent(entry, asset.name, chunk, opts)
            chunk = []
    if chunk:
        yield from _absent(entry, asset.name, chunk, opts)


def _absent(entry: Any, name: str, chunk: list[Any], opts: dict[str, Any]) -> Iterator[Any]:
    for value in chunk:
        if not call(entry, "exists", name, value, **opts):
            yield value


def page(
    snapshot: Snapshot,
    asset: Asset,
    *,
    after: str | None = None,
    limit: int = 100,
    only_missing: bool = False,
) -> list[Any]:
    """Return up to ``limit`` partitions of ``asset`` after the one ``after`` names (a
    spelling or key), in order; ``only_missing``: only those not stored.

    Raises:
        ValidationError: ``after`` names no partition.
    """
    definition = asset.partitions
    if definition is None:
        values: Iterator[Any] = iter([None] if after is None else [])
    else:
        fixed = definition.fixed()
        start = 0 if after is None else fixed.position(parse(asset, [after])[0]) + 1
        values = fixed.iter_from(start)
    if only_missing:
        values = missing(snapshot, asset, values, batch=max(1, min(BATCH, limit)))
    found: list[Any] = []
    for value in values:
        if len(found) >= limit:
            break
        found.append(value)
    return found


def _partitioned(asset: Asset) -> PartitionsDef:
    if asset.partitions is None:
        raise ValidationError(
            f"Asset {asset.name!r} is not partitioned; it has no partition range.",
            asset=asset.name,
        )
    return asset.partitions


def _example(definition: PartitionsDef) -> str:
    total = definition.count()
    if not total:
        return "A..B"
    first, last = definition.value_at(0), definition.value_at(min(total - 1, 2))
    return f"{definition.spell(first)}..{definition.spell(last)}"
