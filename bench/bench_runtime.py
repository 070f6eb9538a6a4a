"""The asset runtime end to end, each figure against the raw floor it needs.

- Scatter throughput (items/s, trivial item function) on the memory coordinator: target at
  least 50,000 items/s (reported against that target as its floor).
- Scatter on the SQLite coordinator against the raw SQL a scatter needs on the same kind of
  file (WAL, ``synchronous=NORMAL``), batched by reader batch: per batch one ``BEGIN
  IMMEDIATE`` transaction inserting the keys (``INSERT ... ON CONFLICT DO NOTHING`` plus a
  ``total`` counter update) and one recording the outcomes (the same, plus a
  ``completed`` counter update), for the same keys (the items' scatter keys: hashes, which
  land all over the B-tree; sequential keys would append and cost a fraction) under a
  barrier id of the same shape. Target within 2x (at least 0.5x the floor's rate).
- Materializing a chain of 1,000 trivial assets on memory IO against a bare loop of the
  same loads, calls and stores on the same IO manager. Target within 3x.
- The least any run of that chain must do, against the same floor: the bare loop plus
  what the issue asks of every step and nothing else (its ``exists`` check, the three IO
  calls through the error boundary, a context, the step's durable record; no planning, no
  resolution, no bookkeeping). Its target is the chain's: when this line misses 3x, so
  must any runtime that keeps those duties.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bench._common import Result, print_results
from flowstone_host.boundary import call
from flowstone_host.callables import CallablePolicy
from flowstone_host.graph import AssetGraph
from flowstone_host.manifest.model import Asset, Scatter, freeze
from flowstone_host.plugins.custom_reader import CustomItemReader
from flowstone_host.plugins.local_executor import LocalExecutor
from flowstone_host.plugins.memory_coordinators import MemoryScatterCoordinator
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.registry import Entry, Snapshot
from flowstone_host.runtime import materialize
from flowstone_host.runtime.context import RunContext
from flowstone_host.runtime.keys import scatter_key
from flowstone_host.runtime.records import RunRecords

ITEMS = 50_000
BATCH = 500
CHAIN = 1_000
REPEATS = 3
POLICY = CallablePolicy(("bench.*",))


def numbers(config: Any, deps: Any) -> Any:
    return range(ITEMS)


def trivial(ctx: Any, item: Any) -> Any:
    return item


def step(ctx: Any, **inputs: Any) -> int:
    return sum(inputs.values()) + 1


def _snapshot(coordinator: Any, assets: list[Asset]) -> Snapshot:
    def reader(config: Any, deps: Any = None) -> CustomItemReader:
        return CustomItemReader(config, deps, callables=POLICY)

    return Snapshot.build(
        [
            Entry("IOManager", "default", MemoryIOManager({})),
            Entry("ItemReader", "custom", reader),
            Entry("Executor", "default", LocalExecutor({"max_workers": 4})),
            Entry("ScatterCoordinator", "default", coordinator),
        ],
        assets=AssetGraph(assets),
    )


def _scatter_asset() -> Asset:
    spec = Scatter(
        reader="custom",
        item="bench.bench_runtime:trivial",
        batch_size=BATCH,
        max_concurrency=4,
        resolved_reader_config=freeze({"function": "bench.bench_runtime:numbers"}),
    )
    return Asset("scatter", scatter=spec)


def _scatter_seconds(coordinator: Any, folder: Path) -> float:
    snap = _snapshot(coordinator, [_scatter_asset()])
    materialize(snap, [], state_dir=folder, callables=POLICY)  # create the run records file
    start = time.perf_counter()
    result = materialize(snap, ["scatter"], state_dir=folder, callables=POLICY)
    elapsed = time.perf_counter() - start
    assert result.ok, result.error
    assert len(snap.io_managers.resolve("default").instance.load("scatter", None)) == ITEMS
    return elapsed


def _memory_scatter() -> Result:
    with tempfile.TemporaryDirectory() as folder:
        rates = [
            ITEMS / _scatter_seconds(MemoryScatterCoordinator({}), Path(folder))
            for _ in range(REPEATS)
        ]
    rate = statistics.median(rates)
    return Result(f"scatter {ITEMS} items, memory coord (items/s)", rate, 50_000, "", 1.0, True)


def _sql_floor_seconds(path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("busy_timeout = 5000", "journal_mode = WAL", "synchronous = NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE k (b TEXT, key TEXT, PRIMARY KEY (b, key)) WITHOUT ROWID")
    conn.execute("CREATE TABLE o (b TEXT, key TEXT, v TEXT, PRIMARY KEY (b, key)) WITHOUT ROWID")
    conn.execute("CREATE TABLE c (b TEXT PRIMARY KEY, total INT, completed INT)")
    # The rows a scatter of these items writes: the keys the runtime gives them (content
    # hashes, so inserts land all over the tree, not appended in order) under a barrier id
    # of the coordinator's shape (run id, colon, uuid).
    barrier = f"{uuid.uuid4().hex[:12]}:{uuid.uuid4().hex}"
    conn.execute("INSERT INTO c VALUES (?, 0, 0)", (barrier,))
    keys = [scatter_key(item) for item in numbers(None, None)]
    start = time.perf_counter()
    for first in range(0, ITEMS, BATCH):
        batch = keys[first : first + BATCH]
        conn.execute("BEGIN IMMEDIATE")
        for key in batch:
            conn.execute("INSERT INTO k VALUES (?, ?) ON CONFLICT DO NOTHING", (barrier, key))
            conn.execute("UPDATE c SET total = total + 1 WHERE b = ?", (barrier,))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        for key in batch:
            conn.execute("INSERT INTO o VALUES (?, ?, '1') ON CONFLICT DO NOTHING", (barrier, key))
            conn.execute("UPDATE c SET completed = completed + 1 WHERE b = ?", (barrier,))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def _sqlite_scatter() -> Result:
    from flowstone_host.plugins.sqlite import SqliteScatterCoordinator

    floors, measured = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(REPEATS):
            floors.append(_sql_floor_seconds(Path(folder) / f"floor{i}.sqlite"))
            state = Path(folder) / f"run{i}"
            coordinator = SqliteScatterCoordinator({"path": "c.sqlite"}, state_dir=state)
            measured.append(_scatter_seconds(coordinator, state))
            coordinator.close()
    to_rate = lambda s: ITEMS / s  # noqa: E731
    return Result(
        f"scatter {ITEMS} items, sqlite coord (items/s)",
        to_rate(statistics.median(measured)),
        to_rate(statistics.median(floors)),
        "",
        0.5,
        True,
    )


def _chain() -> list[Asset]:
    assets = [Asset("a0", compute="bench.bench_runtime:step")]
    assets += [
        Asset(f"a{i}", compute="bench.bench_runtime:step", deps=(f"a{i - 1}",))
        for i in range(1, CHAIN)
    ]
    return assets


def _chain_floor_us(io: MemoryIOManager) -> float:
    start = time.perf_counter()
    io.store("a0", step(None), None)
    for i in range(1, CHAIN):
        io.store(f"a{i}", step(None, **{f"a{i - 1}": io.load(f"a{i - 1}", None)}), None)
    return (time.perf_counter() - start) / CHAIN * 1e6


def _chain_measured_us(folder: Path) -> tuple[float, float]:
    """Return the run's µs per asset, then the floor's on the very IO manager it used."""
    snap = _snapshot(MemoryScatterCoordinator({}), _chain())
    materialize(snap, [], state_dir=folder, callables=POLICY)  # create the run records file
    start = time.perf_counter()
    result = materialize(snap, [f"a{CHAIN - 1}"], state_dir=folder, callables=POLICY)
    elapsed = time.perf_counter() - start
    assert result.ok, result.error
    io = snap.io_managers.resolve("default").instance
    return elapsed / CHAIN * 1e6, _chain_floor_us(io)


def _chain_bound_us(folder: Path) -> tuple[float, float]:
    """Return the µs per asset of the chain's irreducible duties, then the floor's."""
    entry = Entry("IOManager", "default", MemoryIOManager({}))
    records = RunRecords.in_state_dir(folder)
    try:
        run_id = records.create("bound", [f"a{CHAIN - 1}"], None).run_id
        resources: Mapping[str, Any] = MappingProxyType({})  # a run builds its own once
        rows = []
        start = time.perf_counter()
        for i in range(CHAIN):
            name, started = f"a{i}", time.time()
            if call(entry, "exists", name, None):
                continue
            inputs = {f"a{i - 1}": call(entry, "load", f"a{i - 1}", None)} if i else {}
            ctx = RunContext.create(run_id, name, None, resources)
            call(entry, "store", name, step(ctx, **inputs), None)
            rows.append((name, "", "succeeded", started, time.time()))
        records.steps_finished(run_id, rows)
        elapsed = time.perf_counter() - start
    finally:
        records.close()
    return elapsed / CHAIN * 1e6, _chain_floor_us(entry.instance)


def _chain_overhead() -> list[Result]:
    with tempfile.TemporaryDirectory() as folder:
        pairs = [_chain_measured_us(Path(folder) / str(i)) for i in range(REPEATS)]
        bounds = [_chain_bound_us(Path(folder) / f"bound{i}") for i in range(REPEATS)]
    return [
        Result(
            f"chain of {CHAIN} assets, memory IO (us/asset)",
            statistics.median(m for m, _ in pairs),
            statistics.median(f for _, f in pairs),
            "us",
            3.0,
        ),
        Result(
            "  its least: boundary, context, record (us/asset)",
            statistics.median(m for m, _ in bounds),
            statistics.median(f for _, f in bounds),
            "us",
            3.0,
        ),
    ]


def main() -> bool:
    os.environ.setdefault("FLOWSTONE_BENCH", "1")
    results = [_memory_scatter(), _sqlite_scatter(), *_chain_overhead()]
    return print_results("asset runtime", results)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
