"""What every partition definition is: an ordered, lazy sequence of partition values."""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from ..errors import ValidationError
from ..partitions import parse_partition_key, partition_key

__all__ = ["PartitionsDef"]


class PartitionsDef(ABC):
    """An ordered, lazy sequence of partition values (see the module docstring)."""

    __slots__ = ()

    @abstractmethod
    def count(self) -> int:
        """How many partitions there are now."""

    @abstractmethod
    def value_at(self, index: int) -> Any:
        """The partition at ``index`` (0-based).

        Raises:
            IndexError: outside ``0 .. count() - 1``.
        """

    @abstractmethod
    def index_of(self, value: Any) -> int | None:
        """The position of ``value``, or ``None`` if it is not a partition."""

    @abstractmethod
    def spell(self, value: Any) -> str:
        """How ``value`` is written on a command line and in listings."""

    @abstractmethod
    def parse(self, text: str) -> Any:
        """The partition ``text`` names: a spelling (:meth:`spell`) or a canonical key.

        Raises:
            ValidationError: ``text`` names no partition; the message lists near ones.
        """

    @abstractmethod
    def covers(self, other: PartitionsDef) -> bool:
        """Whether every partition of ``other`` is one of this definition's, at any time."""

    @property
    @abstractmethod
    def bounded(self) -> bool:
        """Whether the set is fixed (no range runs up to now)."""

    @abstractmethod
    def fixed(self) -> PartitionsDef:
        """This definition with every open range ended where it ends now, so that a long
        paging pass sees one consistent sequence."""

    @abstractmethod
    def describe(self) -> str:
        """A short description, e.g. ``hourly from 2024-01-01T00:00 (UTC)``."""

    @abstractmethod
    def _identity(self) -> tuple[Any, ...]:
        """What makes two definitions equal: the definition's class first, then its
        parameters."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PartitionsDef) and other._identity() == self._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    # -- derived -------------------------------------------------------------------------

    def __contains__(self, value: Any) -> bool:
        return self.index_of(value) is not None

    def __iter__(self) -> Iterator[Any]:
        return self.iter_from(0)

    def iter_from(self, start: int = 0, stop: int | None = None) -> Iterator[Any]:
        """Yield the partitions from position ``start`` up to ``stop`` (default: the end),
        one at a time."""
        fixed = self.fixed()
        end = fixed.count() if stop is None else min(stop, fixed.count())
        for index in range(max(0, start), end):
            yield fixed.value_at(index)

    def page(self, after: Any = None, limit: int = 100) -> list[Any]:
        """Up to ``limit`` partitions following ``after`` (a value; ``None``: from the first).

        Raises:
            ValidationError: ``after`` is not a partition.
        """
        start = 0 if after is None else self.position(after) + 1
        return list(self.iter_from(start, start + max(0, limit)))

    def position(self, value: Any) -> int:
        """:meth:`index_of`, or an error naming the near partitions."""
        index = self.index_of(value)
        if index is None:
            raise self.unknown(self.spell_any(value))
        return index

    def spell_any(self, value: Any) -> str:
        """:meth:`spell` of a value that may not be a partition."""
        try:
            return self.spell(value)
        except Exception:
            return str(value)

    def key(self, value: Any) -> str:
        """The canonical key of a partition value."""
        return partition_key(value)

    def value_of(self, key: str) -> Any:
        """The partition whose canonical key is ``key``.

        Raises:
            ValidationError: ``key`` is no key, or not the key of a partition.
        """
        value = parse_partition_key(key)
        self.position(value)
        return value

    def unknown(self, text: str) -> ValidationError:
        """The error for ``text`` naming no partition, listing near ones."""
        near = self.near(text)
        shown = ", ".join(near) if near else "none"
        return ValidationError(
            f"No partition {text!r}: the partitions are {self.describe()} "
            f"({self.count()}{'' if self.bounded else ' now'}); nearest: {shown}.",
            details={"partition": text, "near": near},
        )

    def near(self, text: str, n: int = 5) -> list[str]:
        """Spellings of up to ``n`` partitions close to ``text``."""
        total = self.count()
        if total == 0:
            return []
        shown = [self.spell(v) for v in self.iter_from(0, 200)]
        close = difflib.get_close_matches(text, shown, n=n, cutoff=0.5)
        if close:
            return close
        ends = [self.spell(self.value_at(0))]
        if total > 1:
            ends.append(self.spell(self.value_at(total - 1)))
        return ends
