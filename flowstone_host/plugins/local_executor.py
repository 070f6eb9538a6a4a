"""The local executor: a thread pool in the host process."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

from ..contracts.executor import Executor
from ..errors import Conflict

__all__ = ["LocalExecutor"]

T = TypeVar("T")


class LocalExecutor(Executor):
    """Runs work on up to ``max_workers`` threads (default: CPU count + 4, at most 32)."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        "max_workers": {"type": "integer", "min": 1, "nullable": True, "default": None}
    }

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        workers = self.config.get("max_workers") or min(32, (os.cpu_count() or 1) + 4)
        self.max_workers = int(workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._closed:
                raise Conflict("The local executor is closed; no new work is accepted.")
            if self._pool is None:  # threads start on first use, not at load
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="flowstone")
            return self._pool.submit(fn, *args, **kwargs)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
