"""Scripted plugins for the dispatch tests: a reader, a coordinator that keeps what it was
asked, executors whose chunks end when the test says, and an item function its items drive.

An item is ``{"scatter_key": "k3", "n": 3}``; what it does when it runs comes from
:data:`SCRIPT`, by ``(partition, key)`` or by key: fail, wait for a gate, open one, sleep,
call a hook. Every item that starts is appended to :data:`RAN`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar

from flowstone_host.contracts.executor import Executor
from flowstone_host.contracts.item_reader import ItemReader
from flowstone_host.contracts.types import BarrierState, Batch, Recorded
from flowstone_host.errors import NotSupported
from flowstone_host.plugins.memory_coordinators import MemoryScatterCoordinator

__all__ = [
    "RAN",
    "SCRIPT",
    "Do",
    "InlineExecutor",
    "RecordingCoordinator",
    "ScriptedReader",
    "gate",
    "item",
    "items",
    "reset",
    "wait_until",
]


@dataclass(frozen=True)
class Do:
    """What an item does when it runs, in this order."""

    hook: Callable[[], None] | None = None  # called first
    opens: str | None = None  # the gate it opens when it starts
    waits: str | None = None  # the gate it waits for (5 s at most, then it fails)
    sleep: float = 0.0
    fail: bool = False


#: Behaviour by ``(partition, key)`` or by key; an item not named returns its ``n``.
SCRIPT: dict[Any, Do] = {}
#: Keys of the items that started, in order (``partition:key`` when partitioned).
RAN: list[str] = []
_GATES: dict[str, threading.Event] = {}
_CHANGED = threading.Condition()


def reset() -> None:
    SCRIPT.clear()
    RAN.clear()
    _GATES.clear()


def open_gates() -> None:
    """Open every gate, so that no item waits after its test."""
    with _CHANGED:
        for event in _GATES.values():
            event.set()


def gate(name: str) -> threading.Event:
    with _CHANGED:
        return _GATES.setdefault(name, threading.Event())


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait until ``predicate()`` (checked whenever an item starts); return it."""
    deadline = time.monotonic() + timeout
    with _CHANGED:
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _CHANGED.wait(left)
        return True


def items(count: int, first: int = 0) -> list[dict[str, Any]]:
    return [{"scatter_key": f"k{n}", "n": n} for n in range(first, first + count)]


def item(ctx: Any, value: Mapping[str, Any]) -> int:
    key = ctx.key
    do = SCRIPT.get((ctx.partition, key)) or SCRIPT.get(key) or Do()
    with _CHANGED:
        RAN.append(key if ctx.partition is None else f"{ctx.partition}:{key}")
        _CHANGED.notify_all()
    if do.hook is not None:
        do.hook()
    if do.opens is not None:
        gate(do.opens).set()
    if do.waits is not None and not gate(do.waits).wait(5):
        raise TimeoutError(f"{key} waited for gate {do.waits!r} in vain")
    if do.sleep:
        time.sleep(do.sleep)
    if do.fail:
        raise ValueError(f"item {key} fails")
    return int(value["n"])


#: The item function for ``items_per_call`` above 1.
ITEMS = "tests.runtime.scripted:item_list"


def item_list(ctx: Any, values: list[Mapping[str, Any]]) -> list[int]:
    return [int(value["n"]) for value in values]


class ScriptedReader(ItemReader):
    """Reads ``source`` in order; its checkpoint is its position."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        source: list[Any],
        *,
        count: int | None = None,
        checkpoints: bool = True,
        deps: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__({}, deps)
        self.source = source
        self._count = count
        self.checkpoints = checkpoints
        self.position = 0
        self.restored: list[dict[str, Any]] = []
        self.reads: list[int] = []
        self.closed = 0

    def read(self, batch_size: int) -> Batch:
        batch = self.source[self.position : self.position + batch_size]
        self.position += len(batch)
        self.reads.append(len(batch))
        return Batch(batch, self.position >= len(self.source))

    def count(self) -> int | None:
        return self._count

    def checkpoint(self) -> dict[str, Any]:
        if not self.checkpoints:
            raise NotSupported("this reader cannot checkpoint")
        return {"position": self.position}

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        if not self.checkpoints:
            raise NotSupported("this reader cannot restore")
        self.restored.append(dict(checkpoint))
        self.position = int(checkpoint["position"])

    def close(self) -> None:
        self.closed += 1


class RecordingCoordinator(MemoryScatterCoordinator):
    """The memory coordinator, keeping each call the runtime made (``calls``), optionally
    without checkpoints, finished keys or a changeable threshold, calling ``on_record``
    after recording.

    A saved checkpoint ``{"position": n}`` covers the items ``k0`` to ``k{n-1}`` (sources
    made by :func:`items`); ``unsafe`` keeps those it covered without their outcome.
    """

    def __init__(
        self,
        *,
        checkpoints: bool = True,
        finds: bool = True,
        retunable: bool = True,
        on_record: Callable[[Mapping[str, Any], Mapping[str, Any]], None] | None = None,
    ) -> None:
        super().__init__({})
        self.checkpoints, self.finds, self.retunable = checkpoints, finds, retunable
        self.on_record = on_record
        self.calls: list[tuple[Any, ...]] = []
        self.unsafe: list[tuple[Any, list[str]]] = []

    def named(self, method: str) -> list[tuple[Any, ...]]:
        return [call[1:] for call in self.calls if call[0] == method]

    def insert_keys(self, barrier_id: str, keys: Iterable[str], *, final: bool = True) -> None:
        keys = list(keys)
        self.calls.append(("insert_keys", keys, final))
        super().insert_keys(barrier_id, keys, final=final)

    def record_outcomes(
        self,
        barrier_id: str,
        completed: Mapping[str, Any] | None = None,
        failed: Mapping[str, Any] | None = None,
    ) -> Recorded:
        self.calls.append(("record_outcomes", dict(completed or {}), dict(failed or {})))
        recorded = super().record_outcomes(barrier_id, completed, failed)
        if self.on_record is not None:
            self.on_record(completed or {}, failed or {})
        return recorded

    def save_checkpoint(self, barrier_id: str, checkpoint: Mapping[str, Any] | None) -> None:
        if not self.checkpoints:
            raise NotSupported("no checkpoints here")
        self.calls.append(("save_checkpoint", checkpoint))
        covered = [f"k{n}" for n in range(int((checkpoint or {}).get("position", 0)))]
        missing = sorted(set(covered) - super().finished_keys(barrier_id, covered))
        if missing or checkpoint is None:
            self.unsafe.append((checkpoint, missing))
        super().save_checkpoint(barrier_id, checkpoint)

    def load_checkpoint(self, barrier_id: str) -> dict[str, Any] | None:
        if not self.checkpoints:
            raise NotSupported("no checkpoints here")
        return super().load_checkpoint(barrier_id)

    def finished_keys(self, barrier_id: str, keys: Iterable[str]) -> set[str]:
        if not self.finds:
            raise NotSupported("no finished keys here")
        return super().finished_keys(barrier_id, keys)

    def set_tolerated_failures(
        self, barrier_id: str, tolerated_failures: Mapping[str, Any] | None
    ) -> BarrierState:
        self.calls.append(("set_tolerated_failures", tolerated_failures))
        if not self.retunable:
            raise NotSupported("the threshold is fixed")
        return super().set_tolerated_failures(barrier_id, tolerated_failures)

    def cancel(self, barrier_id: str) -> None:
        self.calls.append(("cancel",))
        super().cancel(barrier_id)

    def status(self, barrier_id: str) -> Any:
        self.calls.append(("status",))
        return super().status(barrier_id)


class InlineExecutor(Executor):
    """Runs each chunk as it is submitted: every chunk in flight has ended by the next
    wait. A chunk holding a key of ``broken`` ends with that error instead."""

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {}

    def __init__(self, broken: Mapping[str, Exception] | None = None) -> None:
        super().__init__({})
        self.broken = dict(broken or {})
        self.chunks: list[list[str]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        keys = [key for key, _ in args[2]]  # run_chunk(function, ctx, chunk, token, ...)
        self.chunks.append(keys)
        error = next((self.broken[key] for key in keys if key in self.broken), None)
        if error is not None:
            future.set_exception(error)
            return future
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # pragma: no cover - run_chunk catches item errors
            future.set_exception(exc)
        return future
