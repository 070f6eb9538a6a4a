"""The custom item reader: scatter items from a user function, resumable by cursor."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from ..callables import CallablePolicy
from ..contracts.item_reader import ItemReader
from ..contracts.types import Batch
from ..errors import ConfigError, ValidationError

__all__ = ["CustomItemReader"]


class CustomItemReader(ItemReader):
    """Wraps a user function as an item reader.

    Config:
        function: The source, a ``"module:function"`` string (resolved under the host's
            ``callables.allow``, passed as ``callables=``) or a callable. It is called as
            ``function(config, deps)`` and returns an iterable of items; items are counted
            off as they are read, and ``restore`` re-calls the function and skips the items
            already read (so the source must be deterministic).
        paged: If true, the function is instead a page function
            ``function(cursor, batch_size, config, deps) -> (items, next_cursor)``: called
            with ``cursor=None`` first, it returns ``next_cursor=None`` on the last page.
            Cursors must be JSON-safe. A checkpoint holds the cursor of the page being read
            and how many of its items were returned; ``restore`` fetches that page again
            and skips them, so pages must come back the same for the same cursor.
        count: The total number of items, if the author knows it.
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        "function": {"required": True, "nullable": False, "meta": {"callable": True}},
        "paged": {"type": "boolean", "default": False},
        "count": {"type": "integer", "min": 0, "nullable": True, "default": None},
    }

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        deps: Mapping[str, Any] | None = None,
        *,
        callables: CallablePolicy | None = None,
    ) -> None:
        super().__init__(config, deps)
        if "function" not in self.config:
            raise ConfigError("The custom item reader needs config.function ('module:function').")
        # a name is imported only under the host's allow-list; no policy allows no name
        policy = callables or CallablePolicy()
        self._function: Callable[..., Any] = policy.resolve(self.config["function"])
        self._paged = bool(self.config.get("paged", False))
        self._done = False
        # iterable mode
        self._offset = 0  # items returned so far
        self._source: Iterator[Any] | None = None  # the user's iterator, closed by close()
        self._iterator: Iterator[Any] | None = None  # ``_source`` past the restored offset
        # paged mode
        self._cursor: Any = None  # the cursor of the next page to fetch
        self._exhausted = False  # the last page was fetched
        self._pages: deque[tuple[Any, list[Any]]] = deque()  # (its cursor, items) not all read
        self._taken = 0  # items of the first page in ``_pages`` already returned

    def read(self, batch_size: int) -> Batch:
        if batch_size < 1:
            raise ValidationError(f"batch_size must be at least 1, got {batch_size}")
        items = self._read_paged(batch_size) if self._paged else self._read_iterable(batch_size)
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
        else:
            self._iterator = itertools.chain([items.pop()], self._iterator)
        self._offset += len(items)
        return items

    def _read_paged(self, batch_size: int) -> list[Any]:
        while sum(len(page) for _, page in self._pages) - self._taken < batch_size:
            if self._exhausted:
                break
            cursor = self._cursor
            page, self._cursor = self._function(cursor, batch_size, self.config, self.deps)
            self._pages.append((cursor, list(page)))
            self._exhausted = self._cursor is None
        items: list[Any] = []
        while len(items) < batch_size and self._pages:
            page = self._pages[0][1]
            chunk = page[self._taken : self._taken + batch_size - len(items)]
            items.extend(chunk)
            self._taken += len(chunk)
            if self._taken >= len(page):
                self._pages.popleft()
                self._taken = 0
        self._done = self._exhausted and not self._pages
        return items

    def count(self) -> int | None:
        count = self.config.get("count")
        return None if count is None else int(count)

    def checkpoint(self) -> dict[str, Any]:
        if not self._paged:
            return {"offset": self._offset, "done": self._done}
        # the page being read is fetched again on restore: no item is kept here
        cursor = self._pages[0][0] if self._pages else self._cursor
        return {"cursor": cursor, "skip": self._taken, "done": self._done}

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        try:
            if self._paged:
                self._cursor, self._taken = checkpoint["cursor"], int(checkpoint["skip"])
                self._pages.clear()
                self._exhausted = bool(checkpoint["done"])
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
