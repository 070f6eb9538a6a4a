"""Registries, memory IO, telemetry and in-memory scatter against their raw floors."""

from __future__ import annotations

import time

from bench._common import Result, median_ns_per_op, print_results
from flowstone_host import telemetry
from flowstone_host.plugins.memory_coordinators import MemoryScatterCoordinator
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.registry import Entry, Registry

LOOPS = 200_000


def _resolve_vs_dict_get() -> Result:
    entries = [Entry("IOManager", f"io{i}", object()) for i in range(50)]
    registry = Registry("IOManager", entries)
    table = {e.name: e for e in entries}
    resolve, get = registry.resolve, table.get

    def floor(n: int) -> None:
        for _ in range(n):
            get("io25")

    def measured(n: int) -> None:
        for _ in range(n):
            resolve("io25")

    return Result(
        "registry resolve vs dict.get",
        median_ns_per_op(measured, LOOPS),
        median_ns_per_op(floor, LOOPS),
        "ns",
        2.5,
    )


def _memory_io_vs_dict() -> Result:
    io, table = MemoryIOManager(), {}
    store, load = io.store, io.load

    def floor(n: int) -> None:
        for i in range(n):
            table[("orders", "2024-01-01")] = i
            table.get(("orders", "2024-01-01"))

    def measured(n: int) -> None:
        for i in range(n):
            store("orders", i, "2024-01-01")
            load("orders", "2024-01-01")

    return Result(
        "memory IO store+load vs dict set+get",
        median_ns_per_op(measured, LOOPS // 4),
        median_ns_per_op(floor, LOOPS // 4),
        "ns",
        15.0,
    )


def _bare(event: tuple[str, ...], measurements: dict[str, int], metadata: dict[str, str]) -> None:
    return None


def _telemetry(with_handler: bool) -> Result:
    event, measurements, metadata = ("flowstone", "io", "load"), {"duration": 1}, {"asset": "a"}
    execute = telemetry.execute

    def floor(n: int) -> None:
        for _ in range(n):
            _bare(event, measurements, metadata)

    def measured(n: int) -> None:
        for _ in range(n):
            execute(event, measurements, metadata)

    if with_handler:
        telemetry.attach("bench", ("flowstone", "io"), lambda e, m, md, c: None)
    try:
        value = median_ns_per_op(measured, LOOPS)
    finally:
        telemetry.detach("bench")
    name = "telemetry execute, one handler" if with_handler else "telemetry execute, no handler"
    return Result(
        f"{name} vs bare call",
        value,
        median_ns_per_op(floor, LOOPS),
        "ns",
        8.0 if with_handler else 5.0,
    )


def _completions_per_second() -> Result:
    coordinator, n = MemoryScatterCoordinator(), 200_000
    barrier = coordinator.create_barrier("run", "asset", None)
    keys = [str(i) for i in range(n)]
    coordinator.insert_keys(barrier, keys)
    complete = coordinator.complete
    start = time.perf_counter()
    for key in keys:
        complete(barrier, key, 1)
    rate = n / (time.perf_counter() - start)
    assert coordinator.status(barrier).status == "complete"
    return Result(
        "memory scatter complete() per second (floor: 200k/s)",
        rate / 1000,
        200.0,
        "k/s",
        1.0,
        higher_is_better=True,
    )


def main() -> bool:
    results = [
        _resolve_vs_dict_get(),
        _memory_io_vs_dict(),
        _telemetry(with_handler=False),
        _telemetry(with_handler=True),
        _completions_per_second(),
    ]
    return print_results("foundation", results)
