"""The executor contract: where scatter items and parallel branches run."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .plugin import Plugin

if TYPE_CHECKING:  # futures pull in threading and logging: only executors need them
    from concurrent.futures import Future

__all__ = ["Executor"]

T = TypeVar("T")


class Executor(Plugin):
    """Runs callables and hands back futures: local threads by default, a queue later.

    Invariants:

    - Every submitted callable runs at most once, and its future resolves with its result
      or its exception.
    - No more than the configured concurrency run at the same time.
    - After ``close()`` no new work is accepted; work already submitted finishes.
    """

    @abstractmethod
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` and return its future.

        Raises:
            Conflict: the executor was closed.
        """
