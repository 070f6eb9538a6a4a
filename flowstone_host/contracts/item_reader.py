"""The item reader contract: a streaming, resumable source of scatter items."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from ..errors import NotSupported
from .plugin import Plugin
from .types import Batch

__all__ = ["ItemReader"]


class ItemReader(Plugin):
    """Reads scatter items from a source, a batch at a time, and can resume.

    The host builds a reader as ``cls(config, deps)`` for one scatter run: ``config`` is the
    declaration's config merged with the asset's ``reader_config``, ``deps`` maps dependency
    names to their loaded values. A reader is used by one thread at a time.

    Invariants (``flowstone_host.testing.ItemReaderContract`` checks each one):

    - Reading until ``Batch.done`` yields every item of the source exactly once, in order,
      each batch holding at most ``batch_size`` items.
    - After ``done`` was returned, ``read`` returns an empty batch with ``done`` true.
    - ``checkpoint()`` returns JSON-serialisable data (dicts, lists, str, int, float, bool,
      None) describing the position after the last item returned.
    - A new reader over the same source, given ``restore(checkpoint)``, resumes with the
      next item: no item lost, none repeated.
    - ``count()`` is the total number of items when known, ``None`` when not.
    - ``close()`` may be called more than once.
    """

    def __init__(
        self, config: Mapping[str, Any] | None = None, deps: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(config)
        self.deps: dict[str, Any] = dict(deps or {})

    @abstractmethod
    def read(self, batch_size: int) -> Batch:
        """Return the next batch of at most ``batch_size`` items (``batch_size`` >= 1).

        Raises:
            ValidationError: ``batch_size`` is below 1.
            Unavailable: the source could not be reached; the position is unchanged.
        """

    def count(self) -> int | None:
        """Return the total number of items if known, else ``None`` (the default)."""
        return None

    def checkpoint(self) -> dict[str, Any]:
        """Return a JSON-safe description of the current position (optional).

        Raises:
            NotSupported: the default, for readers that cannot resume.
        """
        raise NotSupported(f"{type(self).__name__} cannot checkpoint")

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        """Continue from a position returned by :meth:`checkpoint` (optional).

        Raises:
            NotSupported: the default, for readers that cannot resume.
            ValidationError: the checkpoint is not one this reader wrote.
        """
        raise NotSupported(f"{type(self).__name__} cannot restore a checkpoint")
