"""Several dimensions: every combination of their partitions, in mixed radix (the first
dimension varies slowest), never materialized."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import ValidationError
from ..partitions import parse_partition_key
from .base import PartitionsDef

__all__ = ["Dimensions"]


class Dimensions(PartitionsDef):
    """Every combination of several dimensions, as ``{dimension: value}``; the first
    dimension varies slowest."""

    __slots__ = ("dims",)

    def __init__(self, dims: Sequence[tuple[str, PartitionsDef]]) -> None:
        if not dims:
            raise ValidationError("A multi-dimensional partitioning needs a dimension.")
        for name, definition in dims:
            if isinstance(definition, Dimensions):
                raise ValidationError(f"Dimension {name!r} cannot have dimensions of its own.")
        self.dims = tuple(dims)

    def _identity(self) -> tuple[Any, ...]:
        return (Dimensions, self.dims)

    def __repr__(self) -> str:
        return f"Dimensions({list(self.dims)!r})"

    @property
    def names(self) -> tuple[str, ...]:
        """The dimension names, in order."""
        return tuple(name for name, _ in self.dims)

    def count(self) -> int:
        return math.prod(definition.count() for _, definition in self.dims)

    def value_at(self, index: int) -> Any:
        return self._at(index, [d.count() for _, d in self.dims], self.dims)

    @staticmethod
    def _at(index: int, sizes: list[int], dims: Sequence[tuple[str, PartitionsDef]]) -> Any:
        if index < 0 or index >= math.prod(sizes):
            raise IndexError(index)
        digits = []
        for size in reversed(sizes):
            index, digit = divmod(index, size)
            digits.append(digit)
        digits.reverse()
        return {name: d.value_at(i) for (name, d), i in zip(dims, digits, strict=True)}

    def iter_from(self, start: int = 0, stop: int | None = None) -> Iterator[Any]:
        fixed = [(name, d.fixed()) for name, d in self.dims]
        sizes = [d.count() for _, d in fixed]
        total = math.prod(sizes)
        end = total if stop is None else min(stop, total)
        for index in range(max(0, start), end):
            yield self._at(index, sizes, fixed)

    def index_of(self, value: Any) -> int | None:
        if not isinstance(value, Mapping) or set(value) != set(self.names):
            return None
        index = 0
        for name, definition in self.dims:
            position = definition.index_of(value[name])
            if position is None:
                return None
            index = index * definition.count() + position
        return index

    def spell(self, value: Any) -> str:
        return ",".join(f"{name}={d.spell(value[name])}" for name, d in self.dims)

    def parse(self, text: str) -> Any:
        if text.startswith("~m("):
            try:
                value = parse_partition_key(text)
            except ValidationError:
                raise self.unknown(text) from None
            if self.index_of(value) is None:
                raise self.unknown(text)
            return value
        parts: dict[str, str] = {}
        for piece in text.split(","):
            name, sep, rest = piece.partition("=")
            if not sep or name not in self.names or name in parts:
                raise ValidationError(
                    f"No partition {text!r}: name one value per dimension as "
                    f"{','.join(f'{n}=...' for n in self.names)} (e.g. "
                    f"{self.spell(self.value_at(0)) if self.count() else '...'}).",
                    details={"partition": text},
                )
            parts[name] = rest
        missing = [n for n in self.names if n not in parts]
        if missing:
            raise ValidationError(
                f"Partition {text!r} names no value for dimension(s) {', '.join(missing)}.",
                details={"partition": text},
            )
        value = {}
        for name, definition in self.dims:
            try:
                value[name] = definition.parse(parts[name])
            except ValidationError as exc:
                raise ValidationError(
                    f"Dimension {name!r}: {exc.message}", details={"partition": text}
                ) from None
        return value

    def near(self, text: str, n: int = 5) -> list[str]:
        return [self.spell(v) for v in self.iter_from(0, n)]

    def covers(self, other: PartitionsDef) -> bool:
        if not isinstance(other, Dimensions) or set(other.names) != set(self.names):
            return False
        mine = dict(self.dims)
        return all(mine[name].covers(d) for name, d in other.dims)

    @property
    def bounded(self) -> bool:
        return all(d.bounded for _, d in self.dims)

    def fixed(self) -> PartitionsDef:
        if self.bounded:
            return self
        return Dimensions([(name, d.fixed()) for name, d in self.dims])

    def describe(self) -> str:
        return " x ".join(f"{name}: {d.describe()}" for name, d in self.dims)
