"""Which partitions an asset has, which a step reads of its dependencies, and parsing them.

- An asset's ``partitions`` is ``None`` (one partition, ``None``), a tuple of values, or a
  mapping of dimension to values: every combination, as ``{dimension: value}``.
- A step ``(asset, p)`` reads a dependency ``d`` at: ``None`` when ``d`` is unpartitioned;
  ``p`` when ``p`` is one of ``d``'s partitions; otherwise every partition of ``d`` (a
  fan-in), loaded as ``{partition value: value}``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from ..errors import ValidationError
from ..manifest.model import Asset
from ..partitions import partition_key

__all__ = ["expand", "fan_in", "parse", "reads"]


def expand(asset: Asset) -> list[Any]:
    """Return every partition value of ``asset`` (``[None]`` when unpartitioned)."""
    spec = asset.partitions
    if spec is None:
        return [None]
    if hasattr(spec, "items"):
        dims = list(spec)
        combos = itertools.product(*(tuple(spec[d]) for d in dims))
        return [dict(zip(dims, combo, strict=True)) for combo in combos]
    return list(spec)


def fan_in(dep: Asset, partition: Any) -> bool:
    """Whether a step at ``partition`` reads every partition of ``dep``."""
    if dep.partitions is None:
        return False
    return partition_key(partition) not in {partition_key(p) for p in expand(dep)}


def reads(dep: Asset, partition: Any) -> list[Any]:
    """Return the partitions of ``dep`` a step at ``partition`` reads."""
    if dep.partitions is None:
        return [None]
    return expand(dep) if fan_in(dep, partition) else [partition]


def parse(asset: Asset, texts: Iterable[str]) -> list[Any]:
    """Return the partition values ``texts`` name, as typed on a command line.

    A text matches a value written the same way (``2024-01-01``, ``7``), its canonical key,
    or for several dimensions ``dim=value,dim=value``.

    Raises:
        ValidationError: a text names no partition of ``asset``; the message lists them.
    """
    values = expand(asset)
    by_text: dict[str, Any] = {}
    for value in values:
        for spelling in _spellings(value):
            by_text.setdefault(spelling, value)
    found = []
    for text in texts:
        if text not in by_text:
            known = ", ".join(_spellings(v)[0] for v in values[:10])
            raise ValidationError(
                f"Asset {asset.name!r} has no partition {text!r} (partitions: {known}"
                f"{', ...' if len(values) > 10 else ''}).",
                asset=asset.name,
            )
        found.append(by_text[text])
    return found


def _spellings(value: Any) -> list[str]:
    if value is None:
        return ["none"]
    if isinstance(value, dict):
        return [",".join(f"{k}={v}" for k, v in value.items()), partition_key(value)]
    return [str(value), partition_key(value)]
