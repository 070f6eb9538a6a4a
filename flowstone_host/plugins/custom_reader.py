"""The custom item reader: scatter items from a user function, resumable by cursor."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from ..callables import import_callable
from ..contracts.item_reader import ItemReader
from ..contracts.types import Batch
from ..errors import ConfigError, ValidationError

__all__ = ["CustomItemReader"]


class CustomItemReader(ItemReader):
    """Wraps a user function as an item reader.

    Config:
        function: The source, a ``"module:function"`` string or a callable. It is called as
            ``function(config, deps)`` and returns an iterable of items; items are counted
            off as they are read, and ``restore`` re-calls the function and skips the items
            already read (so the source must be deterministic).
        paged: If true, the function is instead a page function
            ``function(cursor, batch_size, config, deps) -> (items, next_cursor)``: called
            with ``cursor=None`` first, it returns ``next_cursor=None`` on the last page.
            Cursors must be JSON-safe; ``restore`` resumes from the saved cursor without
            re-reading anything.
        count: The total number of items, if the author knows it.
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        "function": {"required": True, "nullable": False},
        "paged": {"type": "boolean", "default": False},
        "count": {"type": "integer", "min": 0, "nullable": True, "default": None},
    }

    def __init__(
        self, config: Mapping[str, Any] | None = None, deps: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(config, deps)
        if "function" not in self.config:
            raise ConfigError("The custom item reader needs config.function ('module:function').")
        self._function: Callable[..., Any] = import_callable(self.config["function"])
        self._paged = bool(self.config.get("paged", False))
        self._offset = 0  # items returned so far
        self._cursor: Any = None  # paged: cursor of the next page
        self._pending: list[Any] = []  # paged: items of a page not yet returned
        self._done = False
        self._source: Iterator[Any] | None = None  # the user's iterator, closed by close()
        self._iterator: Iterator[Any] | None = None  # ``_source`` past the restored offset

    def read(self, batch_size: int) -> Batch:
        if batch_size < 1:
            raise ValidationError(f"batch_size must be at least 1, got {batch_size}")
        items = self._read_paged(batch_size) if self._paged else self._read_iterable(batch_size)
        self._offset += len(items)
        return Batch(items, self._done)

    def _read_iterable(self, batch_size: int) -> list[Any]:
        if self._done:
            return []
        if self._iterator is None:
            self._source = iter(self._function(self.config, self.deps))
            self._iterator = itertools.islice(self._source, self._offset, None)
        # One look-ahead item tells whether this batch is the last.
        items = list(itertools.islice(self._iterator, batch_size + 1))
        if len(items) <= batch_size:
            self._done = True
            return items
        self._iterator = itertools.chain([items.pop()], self._iterator)
        return items

    def _read_paged(self, batch_size: int) -> list[Any]:
        while len(self._pending) < batch_size and not self._done:
            page, self._cursor = self._function(self._cursor, batch_size, self.config, self.deps)
            self._pending.extend(page)
            self._done = self._cursor is None
        items, self._pending = self._pending[:batch_size], self._pending[batch_size:]
        self._done = self._done and not self._pending
        return items

    def count(self) -> int | None:
        count = self.config.get("count")
        return None if count is None else int(count)

    def checkpoint(self) -> dict[str, Any]:
        if self._paged:
            return {"cursor": self._cursor, "pending": list(self._pending), "done": self._done}
        return {"offset": self._offset, "done": self._done}

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        try:
            if self._paged:
                self._cursor = checkpoint["cursor"]
                self._pending = list(checkpoint["pending"])
            else:
                self._offset = int(checkpoint["offset"])
            self._done = bool(checkpoint["done"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"Not a checkpoint of the custom reader ({'paged' if self._paged else 'iterable'}"
                f" mode): missing or bad {exc}"
            ) from None
        self.close()

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        self._source = self._iterator = None
        if close is not None:
            close()
