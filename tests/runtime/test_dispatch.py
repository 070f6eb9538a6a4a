"""Dispatch: one process's pass over a scatter, watched from its plugins and its run.

The scripted plugins (:mod:`tests.runtime.scripted`) show what the pass asks of them: the
keys it inserts and when the key set is final, the outcomes it records and when, the
checkpoints it saves, the chunks it hands the executor. Time-based cadences run on a clock
the test moves (``Clock``): only the dispatch module reads it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.contracts.executor import Executor
from flowstone_host.graph import AssetGraph
from flowstone_host.manifest.model import Asset, Scatter, freeze
from flowstone_host.plugins.local_executor import LocalExecutor
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.registry import Entry, Snapshot
from flowstone_host.runtime import RunRecords, dispatch, items, materialize
from flowstone_host.runtime.materialize import RunResult
from flowstone_host.runtime.progress import Progress
from flowstone_host.runtime.redrive import retune
from tests.runtime import helpers, scripted
from tests.runtime.helpers import POLICY, W
from tests.runtime.scripted import Do, InlineExecutor, RecordingCoordinator, ScriptedReader

ITEM = "tests.runtime.scripted:item"
#: The default threshold of a scatter: no failure tolerated.
NO_FAILURE = freeze({"count": 0})


@pytest.fixture(autouse=True)
def _script() -> Iterator[None]:
    scripted.reset()
    yield
    scripted.open_gates()
    scripted.reset()


class Clock:
    """The dispatch module's ``time``: ``monotonic()`` moves only when the test says."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def tick(self, by: float = 1.0) -> None:
        self.now += by


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(dispatch, "time", clock)
    return clock


class Told(Progress):
    """Keeps what the run told about its scatters."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def scatter(
        self, asset: str, partition: Any, done: int, failed: int, total: int | None
    ) -> None:
        self.events.append(("scatter", asset, partition, done, failed, total))

    def scatter_finished(self, asset: str, partition: Any) -> None:
        self.events.append(("finished", asset, partition))


@dataclass
class Scene:
    """A snapshot with one scatter asset ``s`` over scripted plugins."""

    tmp: Path
    snap: Snapshot
    coordinator: RecordingCoordinator
    executor: Executor
    readers: list[ScriptedReader] = field(default_factory=list)

    def run(self, *targets: str, **kw: Any) -> RunResult:
        return materialize(
            self.snap, list(targets or ["s"]), state_dir=self.tmp, callables=POLICY, **kw
        )

    def barrier(self, run_id: str, partition: Any = None) -> str:
        found = self.coordinator.find_barrier(run_id, "s", partition)
        assert found is not None
        return found

    def records(self) -> RunRecords:
        return RunRecords.in_state_dir(self.tmp)

    def retune(self, run_id: str, **kw: Any) -> None:
        """Record a retune of ``run_id`` (from any thread)."""
        records = self.records()
        try:
            retune(records, run_id, **kw)
        finally:
            records.close()

    def failed_run(self, run_id: str) -> None:
        """Record run ``run_id`` as a failed run of ``s``, so a retune can come first."""
        records = self.records()
        try:
            records.create(run_id, ["s"], None)
            records.finish(run_id, "failed")
        finally:
            records.close()


def scene(
    tmp: Path,
    source: list[Any],
    *,
    count: int | None = None,
    checkpoints: bool = True,
    coordinator: RecordingCoordinator | None = None,
    executor: Executor | None = None,
    partitions: list[str] | None = None,
    deps: tuple[str, ...] = (),
    tolerated: Any = NO_FAILURE,
    **spec: Any,
) -> Scene:
    coordinator = coordinator or RecordingCoordinator()
    executor = executor or InlineExecutor()
    readers: list[ScriptedReader] = []

    def reader(config: Any, deps: Any) -> ScriptedReader:
        made = ScriptedReader(source, count=count, checkpoints=checkpoints, deps=deps)
        readers.append(made)
        return made

    spec.setdefault("item", ITEM)
    scatter = Scatter(
        reader="scripted",
        tolerated_failures=None if tolerated is None else freeze(tolerated),
        **spec,
    )
    assets = [
        Asset(
            "s",
            scatter=scatter,
            deps=deps,
            partitions=None if partitions is None else freeze(partitions),
        ),
        Asset("source", compute=W + "source"),
    ]
    entries = [
        Entry("IOManager", "default", MemoryIOManager({}), plugin="memory"),
        Entry("ItemReader", "scripted", reader, plugin="scripted"),
        Entry("Executor", "default", executor, plugin="scripted"),
        Entry("ScatterCoordinator", "default", coordinator, plugin="scripted"),
    ]
    if isinstance(executor, LocalExecutor):
        helpers.OPEN.append(executor)
    snap = Snapshot.build(entries, assets=AssetGraph(assets))
    return Scene(tmp, snap, coordinator, executor, readers)


def keys(first: int, stop: int) -> list[str]:
    return [f"k{n}" for n in range(first, stop)]


def ran() -> list[str]:
    """The items that started, in order."""
    return list(scripted.RAN)


def sizes(coordinator: RecordingCoordinator) -> list[int]:
    """How many outcomes each ``record_outcomes`` call carried."""
    return [len(done) + len(bad) for done, bad in coordinator.named("record_outcomes")]


def saved(coordinator: RecordingCoordinator) -> list[Any]:
    return [checkpoint for (checkpoint,) in coordinator.named("save_checkpoint")]


# -- how a stop is told -------------------------------------------------------------------


def test_a_stop_names_the_asset_and_partition_the_counts_and_the_tolerance(
    tmp_path: Path,
) -> None:
    scripted.SCRIPT.update({"k1": Do(fail=True), "k2": Do(fail=True)})
    told = Told()
    s = scene(
        tmp_path,
        scripted.items(10),
        count=10,
        partitions=["a"],
        tolerated={"count": 1},
        batch_size=10,
        max_concurrency=1,
    )
    result = s.run(progress=told)
    error = result.error
    assert error is not None and error.code == "threshold_exceeded"
    assert error.message.startswith(
        "Scatter s [a] stopped (threshold_exceeded): 2 item(s) failed of 10 read, "
        "8 completed; tolerated_failures is {'count': 1}. Fix the failing items"
    )
    assert error.details == {
        "status": "threshold_exceeded",
        "completed": 8,
        "failed": 2,
        "total": 10,
        "tolerated_failures": {"count": 1},
    }
    assert error.context["asset"] == "s"
    # what the run told as it went: one record of the whole chunk, then the end
    assert told.events == [("scatter", "s", "a", 8, 2, 10), ("finished", "s", "a")]
    assert not items.STOPPED, "a stopped scatter leaves nothing behind in the process"


def test_a_stop_without_partition_nor_tolerance(tmp_path: Path) -> None:
    scripted.SCRIPT["k3"] = Do(fail=True)
    s = scene(tmp_path, scripted.items(5), tolerated=None, batch_size=5, max_concurrency=1)
    error = s.run().error
    assert error is not None and error.code == "threshold_exceeded"
    assert error.message.startswith(
        "Scatter s stopped (threshold_exceeded): 1 item(s) failed of 5 read, 4 completed; "
        "tolerated_failures is None."
    )
    assert error.details["tolerated_failures"] is None


def test_a_barrier_cancelled_under_the_run_stops_it_as_cancelled(tmp_path: Path) -> None:
    s = scene(tmp_path, scripted.items(12), batch_size=4, max_concurrency=1)
    scripted.SCRIPT["k5"] = Do(hook=lambda: s.coordinator.cancel(s.barrier("r1")))
    error = s.run(run_id="r1").error
    assert error is not None and error.code == "threshold_exceeded"
    assert error.details["status"] == "cancelled"
    assert "Scatter s stopped (cancelled): 0 item(s) failed" in error.message
    assert ran() == keys(0, 8)  # the chunk that saw it ended; no other started


# -- cancel and resume ----------------------------------------------------------------------


def test_a_cancelled_run_saves_what_finished_then_resumes_from_it(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled between batches: the outcomes that finished are recorded and their
    checkpoint saved at once (the save interval has not passed); the resumed run reads on
    from that checkpoint, skips what finished after it, and runs every item once."""
    monkeypatch.setattr(dispatch, "CHECKPOINT_INTERVAL_S", 60.0)
    cancel = threading.Event()
    s = scene(tmp_path, scripted.items(12), batch_size=4, max_concurrency=3)  # chunks of 1
    scripted.SCRIPT.update(
        {"k2": Do(hook=clock.tick), "k5": Do(hook=cancel.set)}  # k2: the record interval
    )
    first = s.run(run_id="r1", cancel=cancel)
    assert first.status == "cancelled" and first.error is not None
    assert first.error.code == "cancelled"
    assert first.error.message == "Run 'r1' was cancelled."
    assert first.error.to_dict()["context"] == {"run_id": "r1"}
    assert ran() == keys(0, 6)
    assert sizes(s.coordinator) == [3, 3]  # after the interval; the rest when cancelled
    assert saved(s.coordinator) == [{"position": 4}]  # the first batch (k6, k7 never ran)
    assert s.coordinator.unsafe == []

    scripted.RAN.clear()
    s.coordinator.calls.clear()
    again = s.run(run_id="r1")
    assert again.ok and again.resumed, again.error
    assert s.readers[1].restored == [{"position": 4}]
    assert ran() == keys(6, 12)
    assert saved(s.coordinator) == [{"position": 12}]  # at the end, whatever the interval
    stored = s.snap.io_managers.resolve("default").instance.load("s", None)
    assert stored == {f"k{n}": n for n in range(12)}


def test_a_reader_without_checkpoints_resumes_from_the_start_skipping_finished_keys(
    tmp_path: Path,
) -> None:
    cancel = threading.Event()
    s = scene(tmp_path, scripted.items(8), checkpoints=False, batch_size=2, max_concurrency=1)
    scripted.SCRIPT["k3"] = Do(hook=cancel.set)
    assert s.run(run_id="r1", cancel=cancel).status == "cancelled"
    assert ran() == keys(0, 4)
    scripted.RAN.clear()
    again = s.run(run_id="r1")
    assert again.ok, again.error
    assert ran() == keys(4, 8)
    assert saved(s.coordinator) == []  # nothing to save: the coordinator is never asked
    assert s.readers[1].restored == [] and sum(s.readers[1].reads) == 8  # from the start


def test_a_coordinator_without_checkpoints_nor_finished_keys_runs_a_fresh_scatter(
    tmp_path: Path,
) -> None:
    coordinator = RecordingCoordinator(checkpoints=False, finds=False)
    s = scene(tmp_path, scripted.items(10), coordinator=coordinator, batch_size=2)
    result = s.run()
    assert result.ok, result.error
    assert sorted(scripted.RAN) == sorted(keys(0, 10))


# -- reading, inserting, chunking -------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "inserted"),
    [
        (4, [(keys(0, 4), False), (keys(4, 8), False), (keys(8, 10), True)]),
        (5, [(keys(0, 6), False), (keys(6, 10), True)]),
    ],
)
def test_keys_are_inserted_a_group_of_whole_batches_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: int, inserted: list[Any]
) -> None:
    """Batches of 2 are read until ``GROUP_ITEMS`` items are (or the reader is done);
    their keys go in one call, final with the last batch."""
    monkeypatch.setattr(dispatch, "GROUP_ITEMS", group)
    s = scene(tmp_path, scripted.items(10), batch_size=2, max_concurrency=1)
    assert s.run().ok
    assert s.coordinator.named("insert_keys") == inserted
    assert s.readers[0].reads == [2, 2, 2, 2, 2]


@pytest.mark.parametrize(
    ("batch_size", "max_concurrency", "per_call", "chunks"),
    [
        (100, 4, 1, [25] * 4),
        (4, 4, 1, [1] * 4),
        (10, 1, 1, [10]),
        (200, 1, 1, [64, 64, 64, 8]),
        (10, 4, 3, [3, 3, 3, 1]),  # 10 // 4 = 2 items: one whole call of 3
    ],
)
def test_each_batch_is_split_among_max_concurrency_chunks_of_1_to_64_items(
    tmp_path: Path, batch_size: int, max_concurrency: int, per_call: int, chunks: list[int]
) -> None:
    s = scene(
        tmp_path,
        scripted.items(batch_size),
        batch_size=batch_size,
        max_concurrency=max_concurrency,
        items_per_call=per_call,
        item=scripted.ITEMS if per_call > 1 else ITEM,
    )
    assert s.run().ok
    assert isinstance(s.executor, InlineExecutor)
    assert [len(chunk) for chunk in s.executor.chunks] == chunks


def test_the_reader_gets_the_scatters_inputs(tmp_path: Path) -> None:
    s = scene(tmp_path, scripted.items(2), deps=("source",))
    assert s.run().ok
    assert s.readers[0].deps == {"source": 1}


def test_a_chunk_the_executor_fails_fails_each_of_its_items(tmp_path: Path) -> None:
    executor = InlineExecutor(broken={"k4": RuntimeError("worker lost")})
    s = scene(
        tmp_path,
        scripted.items(8),
        executor=executor,
        tolerated={"count": 10},
        batch_size=8,
        max_concurrency=2,
    )
    result = s.run()
    assert result.ok, result.error
    failed: dict[str, Any] = {}
    for _, bad in s.coordinator.named("record_outcomes"):
        failed.update(bad)
    assert sorted(failed) == keys(4, 8)
    for error in failed.values():
        assert error["code"] == "internal_error"
        assert "worker lost" in error["message"]
    assert ran() == keys(0, 4)


# -- when outcomes are recorded ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_concurrency", "failing", "tolerated", "count"),
    [
        (3, False, {"count": 0}, None),
        (5, False, {"count": 0}, None),
        (3, True, {"count": 1000}, None),
        (3, True, {"percent": 60}, 40),
        (3, True, {"percent": 60}, None),
    ],
    ids=["chunks-of-3", "chunks-of-2", "failures-under-a-count", "under-a-percent", "no-total"],
)
def test_outcomes_are_recorded_once_a_reader_batch_of_them_waits(
    tmp_path: Path,
    clock: Clock,
    max_concurrency: int,
    failing: bool,
    tolerated: dict[str, Any],
    count: int | None,
) -> None:
    """With time standing still, outcomes are recorded after the wait in which a reader
    batch of them (10) has gathered, never before; failures that cannot cross the
    threshold change nothing."""
    clock.now = 100.0  # long after boot, and no whole interval since the scatter started
    if failing:
        scripted.SCRIPT.update({f"k{n}": Do(fail=True) for n in range(1, 40, 2)})
    s = scene(
        tmp_path,
        scripted.items(40),
        count=count,
        tolerated=tolerated,
        batch_size=10,
        max_concurrency=max_concurrency,
    )
    result = s.run()
    assert result.ok, result.error
    per_wait = max_concurrency * (10 // max_concurrency)  # chunks of one wait
    recorded = sizes(s.coordinator)
    assert sum(recorded) == 40
    assert all(size >= 10 for size in recorded[:-1]), recorded
    assert all(size < 10 + per_wait for size in recorded), recorded


def test_outcomes_wait_at_most_the_record_interval(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "RECORD_INTERVAL_S", 1.0)
    scripted.SCRIPT["k0"] = Do(hook=clock.tick)  # the first chunk takes the whole interval
    s = scene(tmp_path, scripted.items(128), batch_size=200, max_concurrency=1)
    assert s.run().ok
    assert sizes(s.coordinator) == [64, 64]


@pytest.mark.parametrize(
    ("tolerated", "count", "failing"),
    [({"count": 1}, None, [10, 70]), ({"percent": 10}, 512, list(range(64, 128)))],
    ids=["count", "percent"],
)
def test_failures_that_cross_the_threshold_are_recorded_at_once(
    tmp_path: Path, clock: Clock, tolerated: dict[str, Any], count: int | None, failing: list[int]
) -> None:
    """Outcomes wait for a reader batch of 256, but the chunk whose failures cross the
    threshold is recorded as soon as it ends: the run stops after it."""
    clock.now = 100.0
    scripted.SCRIPT.update({f"k{n}": Do(fail=True) for n in failing})
    s = scene(
        tmp_path,
        scripted.items(512),
        count=count,
        tolerated=tolerated,
        batch_size=256,
        max_concurrency=1,  # chunks of 64
    )
    error = s.run().error
    assert error is not None and error.code == "threshold_exceeded"
    assert ran() == keys(0, 128)
    assert sizes(s.coordinator) == [128]


# -- checkpoints ----------------------------------------------------------------------------


def test_checkpoints_are_saved_at_most_every_interval_and_at_the_end(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "CHECKPOINT_INTERVAL_S", 1.0)
    monkeypatch.setattr(dispatch, "GROUP_ITEMS", 2)  # a batch is read before each chunk
    scripted.SCRIPT.update(
        {
            "k2": Do(hook=clock.tick),  # t=1: a whole interval after the start
            "k3": Do(fail=True),  # a failure finishes its item too
            "k6": Do(hook=lambda: clock.tick(0.5)),
            "k8": Do(hook=lambda: clock.tick(0.5)),  # t=2: an interval after the last save
        }
    )
    s = scene(
        tmp_path,
        scripted.items(12),
        tolerated={"count": 5},
        batch_size=2,
        max_concurrency=1,  # one batch per wait, recorded at once
    )
    assert s.run().ok
    assert sizes(s.coordinator) == [2] * 6
    assert saved(s.coordinator) == [{"position": 4}, {"position": 10}, {"position": 12}]
    assert s.coordinator.unsafe == []


def test_a_checkpoint_waits_for_every_item_it_covers(tmp_path: Path) -> None:
    """Chunks end out of order (the first waits for the third): no checkpoint is saved
    past an item without an outcome."""
    scripted.SCRIPT.update({"k0": Do(waits="g"), "k2": Do(opens="g")})
    s = scene(
        tmp_path,
        scripted.items(40),
        executor=LocalExecutor({"max_workers": 4}),
        batch_size=4,
        max_concurrency=4,  # chunks of 1
    )
    assert s.run().ok
    assert s.coordinator.unsafe == []
    assert saved(s.coordinator)[-1] == {"position": 40}


# -- live retune -------------------------------------------------------------------------------


def test_a_retune_recorded_before_the_run_applies_from_its_first_chunk(
    tmp_path: Path, clock: Clock
) -> None:
    s = scene(tmp_path, scripted.items(8), partitions=["a"], batch_size=8, max_concurrency=4)
    s.failed_run("r1")
    s.retune("r1", max_concurrency=1, tolerated_failures={"count": 5})
    result = s.run(run_id="r1")
    assert result.ok, result.error
    assert isinstance(s.executor, InlineExecutor)
    assert [len(chunk) for chunk in s.executor.chunks] == [8]  # one chunk: max_concurrency 1
    (step,) = [step for step in result.record.steps if step.asset == "s"]
    assert step.partition == "a"
    assert step.details["tuning"] == {"max_concurrency": 1, "tolerated_failures": {"count": 5}}
    assert s.coordinator.named("set_tolerated_failures") == [({"count": 5},)]


@pytest.mark.parametrize("tick", [0.0, 1.0], ids=["time-stands-still", "a-whole-interval"])
def test_the_retune_is_read_at_most_every_tuning_interval(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, tick: float
) -> None:
    monkeypatch.setattr(dispatch, "TUNING_INTERVAL_S", 1.0)
    clock.now = 10.0
    reads: list[str] = []
    tuning = RunRecords.tuning

    def counted(self: RunRecords, run_id: str) -> Any:
        reads.append(run_id)
        return tuning(self, run_id)

    monkeypatch.setattr(RunRecords, "tuning", counted)
    scripted.SCRIPT.update({key: Do(hook=lambda: clock.tick(tick)) for key in keys(0, 4)})
    s = scene(tmp_path, scripted.items(4), batch_size=1, max_concurrency=1)
    s.failed_run("r1")
    s.retune("r1", tolerated_failures={"count": 3})
    assert s.run(run_id="r1").ok
    # at the start, then after each of the 4 waits only if a whole interval has passed
    assert reads == ["r1"] * (5 if tick else 1)
    assert s.coordinator.named("set_tolerated_failures") == [({"count": 3},)]  # applied once


def test_a_tighter_tolerance_already_crossed_stops_before_another_chunk_starts(
    tmp_path: Path, clock: Clock
) -> None:
    s = scene(
        tmp_path, scripted.items(16), tolerated={"count": 10}, batch_size=4, max_concurrency=1
    )

    def tighten() -> None:
        s.retune("r1", tolerated_failures={"count": 1})
        clock.tick()

    scripted.SCRIPT.update({"k0": Do(fail=True), "k1": Do(fail=True), "k5": Do(hook=tighten)})
    error = s.run(run_id="r1").error
    assert error is not None and error.code == "threshold_exceeded"
    assert error.details["tolerated_failures"] == {"count": 1}
    assert ran() == keys(0, 8)


def test_a_fixed_threshold_retuned_looser_leaves_a_healthy_run_alone(tmp_path: Path) -> None:
    coordinator = RecordingCoordinator(retunable=False)
    s = scene(tmp_path, scripted.items(6), coordinator=coordinator, batch_size=2)
    s.failed_run("r1")
    s.retune("r1", tolerated_failures={"count": 3})
    result = s.run(run_id="r1")
    assert result.ok, result.error
    assert coordinator.named("cancel") == []


def test_a_fixed_threshold_is_enforced_by_the_runtime_once_the_key_set_is_final(
    tmp_path: Path,
) -> None:
    """The barrier keeps its creation threshold (1,000 failures); the retune's 10% is
    judged by the runtime against the barrier's keys, which cancels the barrier."""
    coordinator = RecordingCoordinator(retunable=False)
    s = scene(
        tmp_path,
        scripted.items(40),
        coordinator=coordinator,
        tolerated={"count": 1000},
        batch_size=10,
        max_concurrency=1,
    )
    scripted.SCRIPT.update({key: Do(fail=True) for key in keys(0, 10)})
    s.failed_run("r1")
    s.retune("r1", tolerated_failures={"percent": 10})
    error = s.run(run_id="r1").error
    assert error is not None and error.code == "threshold_exceeded"
    assert error.details == {
        "status": "threshold_exceeded",
        "completed": 0,
        "failed": 10,
        "total": 40,
        "tolerated_failures": {"percent": 10.0},
    }
    assert "Scatter s stopped (threshold_exceeded)" in error.message
    assert coordinator.named("cancel") == [()]
    assert coordinator.status(s.barrier("r1")).status == "cancelled"
    assert ran() == keys(0, 10)


def test_a_fixed_threshold_judges_a_percentage_only_on_the_final_key_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """6 of the first 10 items fail (60%), 6 of all 40 (15%): under the retune's 30%."""
    monkeypatch.setattr(dispatch, "GROUP_ITEMS", 10)  # keys inserted a batch at a time
    coordinator = RecordingCoordinator(retunable=False)
    s = scene(
        tmp_path,
        scripted.items(40),
        coordinator=coordinator,
        tolerated={"count": 1000},
        batch_size=10,
        max_concurrency=1,
    )
    scripted.SCRIPT.update({key: Do(fail=True) for key in keys(0, 6)})
    s.failed_run("r1")
    s.retune("r1", tolerated_failures={"percent": 30})
    result = s.run(run_id="r1")
    assert result.ok, result.error
    assert len(scripted.RAN) == 40


@pytest.mark.parametrize("retuned", [False, True])
def test_a_coordinator_that_takes_the_threshold_judges_alone(tmp_path: Path, retuned: bool) -> None:
    """Without a total, only a coordinator that cannot take a new threshold has the
    runtime read its status after each record."""
    s = scene(tmp_path, scripted.items(6), tolerated={"count": 5}, batch_size=2, max_concurrency=1)
    scripted.SCRIPT.update({"k1": Do(fail=True), "k4": Do(fail=True)})
    if retuned:
        s.failed_run("r1")
        s.retune("r1", tolerated_failures={"count": 4})
    assert s.run(run_id="r1").ok
    names = [call[0] for call in s.coordinator.calls]
    first, last = names.index("record_outcomes"), len(names) - names[::-1].index("record_outcomes")
    assert names[first:last].count("record_outcomes") == 3
    assert "status" not in names[first:last]


# -- progress -----------------------------------------------------------------------------------


def test_progress_counts_the_recorded_outcomes(tmp_path: Path, clock: Clock) -> None:
    scripted.SCRIPT["k3"] = Do(fail=True)
    told = Told()
    s = scene(
        tmp_path,
        scripted.items(6),
        count=6,
        partitions=["a"],
        tolerated={"count": 5},
        batch_size=2,
        max_concurrency=1,
    )
    assert s.run(progress=told).ok
    assert told.events == [
        ("scatter", "s", "a", 2, 0, 6),
        ("scatter", "s", "a", 3, 1, 6),
        ("scatter", "s", "a", 5, 1, 6),
        ("finished", "s", "a"),
    ]


# -- chunks in flight --------------------------------------------------------------------------


def test_a_stop_stops_running_chunks_before_their_next_item(tmp_path: Path) -> None:
    s = scene(
        tmp_path,
        scripted.items(20),
        executor=LocalExecutor({"max_workers": 4}),
        coordinator=RecordingCoordinator(on_record=_open_on_failure("stop")),
        batch_size=20,
        max_concurrency=2,  # chunks k0-k9 and k10-k19
    )
    scripted.SCRIPT["k0"] = Do(waits="running", fail=True)  # once the other chunk runs
    scripted.SCRIPT["k10"] = Do(opens="running", waits="stop", sleep=0.05)
    scripted.SCRIPT.update({key: Do(sleep=0.05) for key in keys(11, 20)})
    error = s.run().error
    assert error is not None and error.code == "threshold_exceeded"
    ran = [key for key in scripted.RAN if key in keys(10, 20)]
    assert len(ran) < 5, ran  # it stopped within an item or two, not at the chunk's end
    assert not items.STOPPED


def test_a_stop_leaves_other_scatters_of_the_process_running(tmp_path: Path) -> None:
    """Partition a stops while partition b's chunk runs; b's items go on (a's stop waits
    for b's fifth item, which opens the gate a's running chunk waits for)."""
    s = scene(
        tmp_path,
        scripted.items(10),
        executor=LocalExecutor({"max_workers": 8}),
        coordinator=RecordingCoordinator(on_record=_open_on_failure("b")),
        partitions=["a", "b"],
        batch_size=10,
        max_concurrency=2,  # chunks k0-k4 and k5-k9
    )
    scripted.SCRIPT.update(
        {
            ("a", "k0"): Do(waits="a runs", fail=True),  # once a's other chunk runs
            ("a", "k5"): Do(opens="a runs", waits="a"),
            ("b", "k0"): Do(waits="b", sleep=0.02),
            ("b", "k4"): Do(opens="a"),
        }
    )
    scripted.SCRIPT.update({("b", key): Do(sleep=0.02) for key in keys(1, 4)})
    result = s.run(concurrency=2)
    assert result.error is not None and result.error.details["status"] == "threshold_exceeded"
    steps = {step.partition: step.status for step in result.record.steps}
    assert steps == {"a": "failed", "b": "succeeded"}
    status = s.coordinator.status(s.barrier(result.run_id, "b"))
    assert (status.status, status.completed) == ("complete", 10)


def test_a_retune_applies_while_every_chunk_in_flight_still_runs(tmp_path: Path) -> None:
    """k0 waits for k1, which only a second chunk in flight can run: the retune to 2 is
    read while k0's chunk runs, not once it ends."""
    s = scene(
        tmp_path,
        scripted.items(3),
        executor=LocalExecutor({"max_workers": 4}),
        batch_size=1,
        max_concurrency=1,
    )
    scripted.SCRIPT["k0"] = Do(hook=lambda: s.retune("r1", max_concurrency=2), waits="g")
    scripted.SCRIPT["k1"] = Do(opens="g")
    result = s.run(run_id="r1")
    assert result.ok, result.error


def test_a_chunk_that_ends_makes_room_for_the_next_while_others_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "TUNING_INTERVAL_S", 30.0)  # no wait ends on its own
    s = scene(
        tmp_path,
        scripted.items(3),
        executor=LocalExecutor({"max_workers": 4}),
        batch_size=1,
        max_concurrency=2,
    )
    scripted.SCRIPT.update({"k0": Do(waits="g"), "k2": Do(opens="g")})
    result = s.run()
    assert result.ok, result.error


def _open_on_failure(name: str) -> Any:
    def hook(completed: Any, failed: Any) -> None:
        if failed:
            scripted.gate(name).set()

    return hook
