"""Partitions at scale: an asset with 1,000,000 hourly partitions, 10% of them stored.

- First page of missing partitions (100, as ``flowstone-host partitions ASSET --missing``
  lists them): target under 100 ms (reported against that budget as its floor), and
  against the raw floor of the same work without the runtime: generating the page's
  candidate datetimes directly and looking each key up in the memory IO manager's dict
  (target within 5x: the difference is the lazy definition and the plugin boundary).
- Peak memory of listing every missing partition, page after page (10,000 at a time), in
  a subprocess: the growth of its peak RSS over its RSS before listing, with the asset's
  stored partitions already in memory. Target flat: under 50 MB (reported against that
  budget as its floor).
- Backfill throughput: ``materialize --missing`` of 5,000 daily partitions of a trivial
  asset on memory IO (partitions per second) against the runtime benchmark's figure,
  measured here the same way: materializing a chain of 1,000 trivial assets (assets per
  second). Target: a partition costs at most 1.5x an asset of the chain (>= 0.67x).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import Result, print_results
from flowstone_host.callables import CallablePolicy
from flowstone_host.graph import AssetGraph
from flowstone_host.manifest.model import Asset
from flowstone_host.partitions import partition_key
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.registry import Entry, Snapshot
from flowstone_host.runtime import materialize, partitioning

HOURS = {"hourly": {"start": "2000-01-01T00:00", "end": "2114-01-29T15:00"}}  # 1,000,000
COUNT = 1_000_000
STORED_EVERY = 10  # 10% stored, spread evenly
PAGE = 100
LIST_PAGE = 10_000
BACKFILL_DAYS = 5_000
CHAIN = 1_000
REPEATS = 7
POLICY = CallablePolicy(("bench.*",))
_HOUR = dt.timedelta(hours=1)


def trivial(ctx: Any) -> int:
    return 1


def _snapshot(assets: list[Asset]) -> Snapshot:
    return Snapshot.build(
        [Entry("IOManager", "default", MemoryIOManager({}))], assets=AssetGraph(assets)
    )


def _hourly() -> tuple[Snapshot, Asset, MemoryIOManager]:
    snap = _snapshot([Asset("hours", compute="bench.bench_partitions:trivial", partitions=HOURS)])
    asset = snap.assets.resolve("hours")
    io = snap.io_managers.resolve("default").instance
    assert asset.partitions is not None and asset.partitions.count() == COUNT
    start = asset.partitions.value_at(0)
    for index in range(0, COUNT, STORED_EVERY):
        io.store("hours", 1, start + index * _HOUR)
    return snap, asset, io


def _first_page(snap: Snapshot, asset: Asset, io: MemoryIOManager) -> list[Result]:
    measured, floors = [], []
    assert asset.partitions is not None
    start = asset.partitions.value_at(0)
    data = io._data  # the raw floor reads the dict the IO manager keeps

    def floor() -> list[dt.datetime]:
        found, index = [], 0
        while len(found) < PAGE:
            value = start + index * _HOUR
            if ("hours", partition_key(value)) not in data:
                found.append(value)
            index += 1
        return found

    expected = floor()
    for _ in range(REPEATS):
        begin = time.perf_counter()
        page = partitioning.page(snap, asset, limit=PAGE, only_missing=True)
        measured.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        floor()
        floors.append(time.perf_counter() - begin)
        assert page == expected
    ms = statistics.median(measured) * 1000
    return [
        Result(f"first page of {PAGE} missing of 1M hourly (ms)", ms, 100.0, "ms", 1.0),
        Result(
            f"first page of {PAGE} missing vs raw datetimes+dict (ms)",
            ms,
            statistics.median(floors) * 1000,
            "ms",
            5.0,
        ),
    ]


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _list_all_child() -> None:
    """In the subprocess: list every missing partition, a page at a time; print figures."""
    snap, asset, _ = _hourly()
    partitioning.page(snap, asset, limit=PAGE, only_missing=True)  # warm up
    gc.collect()
    before = _rss_mb()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
    begin, total, after, highest = time.perf_counter(), 0, None, before
    while True:
        page = partitioning.page(snap, asset, after=after, limit=LIST_PAGE, only_missing=True)
        highest = max(highest, _rss_mb())  # a page's values are still held here
        if not page:
            break
        total += len(page)
        after = partition_key(page[-1])
    seconds = time.perf_counter() - begin
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000
    # The sampled high-water mark, or the process's peak if listing raised it.
    growth = max(highest - before, peak - before if peak > peak_before else 0.0)
    print(json.dumps({"missing": total, "seconds": seconds, "growth_mb": growth, "rss": before}))


def _list_all() -> list[Result]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_partitions", "--list-all-child"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["missing"] == COUNT - COUNT // STORED_EVERY, figures
    print(
        f"  listed {figures['missing']} missing partitions in {figures['seconds']:.1f} s "
        f"({figures['missing'] / figures['seconds']:,.0f}/s), RSS before {figures['rss']:.0f} MB"
    )
    return [
        Result(
            "peak memory listing all missing (MB above baseline)",
            figures["growth_mb"],
            50.0,
            "MB",
            1.0,
        )
    ]


def _backfill_us(folder: Path) -> float:
    days = {"daily": {"start": "2000-01-01", "end": "2013-09-08"}}
    asset = Asset("days", compute="bench.bench_partitions:trivial", partitions=days)
    snap = _snapshot([asset])
    assert snap.assets.resolve("days").partitions.count() == BACKFILL_DAYS  # type: ignore[union-attr]
    materialize(snap, [], state_dir=folder, callables=POLICY)  # create the run records file
    begin = time.perf_counter()
    result = materialize(snap, ["days"], missing=True, state_dir=folder, callables=POLICY)
    elapsed = time.perf_counter() - begin
    assert result.ok and result.partitions == BACKFILL_DAYS, result.error
    return elapsed / BACKFILL_DAYS * 1e6


def chained(ctx: Any, **inputs: Any) -> int:
    return sum(inputs.values()) + 1


def _chain_us(folder: Path) -> float:
    """The runtime benchmark's figure: us per asset materializing a chain of 1,000."""
    assets = [Asset("a0", compute="bench.bench_partitions:chained")]
    assets += [
        Asset(f"a{i}", compute="bench.bench_partitions:chained", deps=(f"a{i - 1}",))
        for i in range(1, CHAIN)
    ]
    snap = _snapshot(assets)
    materialize(snap, [], state_dir=folder, callables=POLICY)  # create the run records file
    begin = time.perf_counter()
    result = materialize(snap, [f"a{CHAIN - 1}"], state_dir=folder, callables=POLICY)
    elapsed = time.perf_counter() - begin
    assert result.ok, result.error
    return elapsed / CHAIN * 1e6


def _backfill() -> list[Result]:
    with tempfile.TemporaryDirectory() as folder:
        measured, chain = [], []
        for i in range(3):  # interleaved, so that load drift favours neither
            measured.append(_backfill_us(Path(folder) / f"b{i}"))
            chain.append(_chain_us(Path(folder) / f"c{i}"))
    per_s = lambda us: 1e6 / us  # noqa: E731
    return [
        Result(
            f"backfill --missing {BACKFILL_DAYS} days vs 1,000-asset chain (/s)",
            per_s(statistics.median(measured)),
            per_s(statistics.median(chain)),
            "",
            0.67,
            True,
        )
    ]


def main() -> bool:
    os.environ.setdefault("FLOWSTONE_BENCH", "1")
    snap, asset, io = _hourly()
    results = _first_page(snap, asset, io)
    del snap, asset, io
    results += _list_all()
    results += _backfill()
    return print_results("partitions at scale", results)


if __name__ == "__main__":
    if sys.argv[1:] == ["--list-all-child"]:
        _list_all_child()
        raise SystemExit(0)
    raise SystemExit(0 if main() else 1)
