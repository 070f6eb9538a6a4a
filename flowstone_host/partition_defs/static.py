"""A static partition list: values as written (strings or integers), in their order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import ValidationError
from ..partitions import partition_key
from .base import PartitionsDef

__all__ = ["StaticPartitions"]


class StaticPartitions(PartitionsDef):
    """A list of values as written (strings or integers), in their order."""

    __slots__ = ("_by_key", "values")

    def __init__(self, values: Sequence[Any]) -> None:
        self.values = tuple(values)
        self._by_key = {partition_key(v): i for i, v in enumerate(self.values)}
        if len(self._by_key) != len(self.values):
            raise ValidationError("A partition list repeats a value; list each one once.")

    def _identity(self) -> tuple[Any, ...]:
        return (StaticPartitions, self.values)

    def __repr__(self) -> str:
        return f"StaticPartitions({list(self.values)!r})"

    def count(self) -> int:
        return len(self.values)

    def value_at(self, index: int) -> Any:
        if index < 0:
            raise IndexError(index)
        return self.values[index]

    def index_of(self, value: Any) -> int | None:
        try:
            return self._by_key.get(partition_key(value))
        except ValidationError:
            return None

    def spell(self, value: Any) -> str:
        return str(value)

    def parse(self, text: str) -> Any:
        for value in self.values:
            if str(value) == text:
                return value
        index = self._by_key.get(text)
        if index is not None:
            return self.values[index]
        raise self.unknown(text)

    def covers(self, other: PartitionsDef) -> bool:
        if not isinstance(other, StaticPartitions):
            return False
        return all(key in self._by_key for key in other._by_key)

    @property
    def bounded(self) -> bool:
        return True

    def fixed(self) -> PartitionsDef:
        return self

    def describe(self) -> str:
        return f"the list {', '.join(str(v) for v in self.values[:5])}" + (
            ", ..." if len(self.values) > 5 else ""
        )
