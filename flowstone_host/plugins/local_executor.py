"""The local executor: a thread pool (or a process pool) in the host's machine."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor as PoolExecutor
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

from ..contracts.executor import Executor
from ..errors import Conflict

__all__ = ["LocalExecutor"]

T = TypeVar("T")


class LocalExecutor(Executor):
    """Runs work on up to ``max_workers`` threads, or processes for CPU-bound work.

    Config:
        max_workers: How many run at once (default: CPU count + 4, at most 32, for
            threads; the CPU count for processes).
        kind: ``thread`` (the default) or ``process``. A process pool is started with the
            ``spawn`` context; what is submitted must then be picklable (module-level
            functions, plain data), and an exception raised in a worker reaches the future
            as the same exception (a ``FlowStoneError`` keeps its code). A worker that dies
            fails the futures it held with ``BrokenProcessPool``, and the pool is replaced
            for the next submission.
    """

    contract_version = "1.0.0"
    plugin_version = "1.1.0"
    config_schema: ClassVar[dict[str, Any]] = {
        "max_workers": {"type": "integer", "min": 1, "nullable": True, "default": None},
        "kind": {"type": "string", "allowed": ["thread", "process"], "default": "thread"},
    }

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self.kind = str(self.config.get("kind") or "thread")
        if self.kind not in ("thread", "process"):
            raise Conflict(f"executor kind must be 'thread' or 'process', got {self.kind!r}")
        cpus = os.cpu_count() or 1
        default = cpus if self.kind == "process" else min(32, cpus + 4)
        self.max_workers = int(self.config.get("max_workers") or default)
        self._pool: PoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock:
            if self._closed:
                raise Conflict("The local executor is closed; no new work is accepted.")
            if self._pool is None or _broken(self._pool):  # started on first use, not at load
                self._pool = self._new_pool()
            return self._pool.submit(fn, *args, **kwargs)

    def _new_pool(self) -> PoolExecutor:
        if self.kind == "process":
            context = multiprocessing.get_context("spawn")  # the host runs threads: no fork
            return ProcessPoolExecutor(self.max_workers, mp_context=context)
        return ThreadPoolExecutor(self.max_workers, thread_name_prefix="flowstone")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _broken(pool: PoolExecutor) -> bool:
    return bool(getattr(pool, "_broken", False))
