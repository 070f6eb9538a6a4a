"""Run records keep their connections open across runs in a process, and a fresh run's
result lists the steps it wrote exactly as the records read them back."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from flowstone_host.manifest.model import Asset
from flowstone_host.runtime import RunRecords, materialize
from flowstone_host.runtime.records import _POOL, plain_steps
from tests.runtime.helpers import POLICY, W, snapshot


def test_a_closed_records_connection_is_taken_by_the_next_records_of_the_file(
    tmp_path: Path,
) -> None:
    first = RunRecords.in_state_dir(tmp_path)
    conn = first._conn()
    first.create("r1", ["a"], None)
    first.close()
    # The WAL survives the close: the connection is still open in the pool.
    assert (tmp_path / "runs.sqlite-wal").exists()
    second = RunRecords.in_state_dir(tmp_path)
    assert second._conn() is conn
    assert second.get("r1").status == "running"
    second.close()


def test_a_file_made_again_at_the_same_path_gets_a_new_connection(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = RunRecords.in_state_dir(state)
    conn = first._conn()
    first.create("r1", ["a"], None)
    first.close()
    shutil.rmtree(state)
    second = RunRecords.in_state_dir(state)
    assert second._conn() is not conn
    assert second.find("r1") is None  # the new file, with its schema
    second.create("r2", ["a"], None)
    assert [r.run_id for r in second.list()] == ["r2"]
    second.close()


def test_the_pool_holds_a_bounded_number_of_connections(tmp_path: Path) -> None:
    for i in range(_POOL.size + 3):
        RunRecords.in_state_dir(tmp_path / str(i)).close()
    assert len(_POOL._idle) <= _POOL.size


def test_threads_of_one_records_get_their_own_connections_back_in_the_pool(
    tmp_path: Path,
) -> None:
    import threading

    records = RunRecords.in_state_dir(tmp_path)
    records.create("r1", ["a"], None)
    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(records._conn()))
    thread.start()
    thread.join()
    assert seen[0] is not records._conn()
    records.close()
    key = os.path.abspath(tmp_path / "runs.sqlite")
    assert sum(1 for path, _, _ in _POOL._idle if path == key) >= 2


def test_a_fresh_run_lists_what_it_wrote_as_the_records_read_it(tmp_path: Path) -> None:
    assets = [Asset("source", compute=W + "source")]
    assets += [Asset(f"s{i}", compute=W + "plus_one", deps=("source",)) for i in range(5)]
    snap = snapshot(assets, tmp_path)
    materialize(snap, ["source"], state_dir=tmp_path, callables=POLICY)
    result = materialize(snap, [a.name for a in assets], state_dir=tmp_path, callables=POLICY)
    assert result.ok and not result.resumed
    records = RunRecords.in_state_dir(tmp_path)
    try:
        assert result.record == records.get(result.run_id)
    finally:
        records.close()
    assert {s.status for s in result.record.steps} == {"reused", "succeeded"}


def test_plain_steps_keep_the_first_start_and_the_last_outcome() -> None:
    rows = [("b", "x", "reused", 2.0, 3.0), ("a", "x", "succeeded", 1.0, 4.0)]
    rows.append(("b", "x", "succeeded", 5.0, 6.0))
    (a, b) = plain_steps(rows)
    assert (a.asset, a.status, a.started_at) == ("a", "succeeded", 1.0)
    assert (b.asset, b.status, b.started_at, b.finished_at) == ("b", "succeeded", 2.0, 6.0)


def test_many_plain_steps_are_written_as_plain_steps_reads_them(tmp_path: Path) -> None:
    # 250 rows: two whole multi-row statements and a rest, a step written again across
    # them and within the rest.
    rows = [(f"s{i:03}", "~", "succeeded", 1000.0 + i, 1000.5 + i) for i in range(240)]
    rows += [("s005", "~", "reused", 2000.0, 2000.5), ("s150", "~", "reused", 2001.0, 2001.5)]
    rows += [(f"t{i}", "~", "succeeded", 3000.0 + i, 3000.5 + i) for i in range(7)]
    rows.append(("t3", "~", "reused", 3100.0, 3100.5))
    records = RunRecords.in_state_dir(tmp_path)
    try:
        records.create("r1", ["s"], None)
        records.steps_finished("r1", rows[:130])
        records.steps_finished("r1", rows[130:])
        steps = records.get("r1").steps
        assert steps == plain_steps(rows)
        assert len(steps) == 247
        assert records.step_counts("r1") == {
            **{f"s{i:03}": {"succeeded": 1} for i in range(240) if i not in (5, 150)},
            "s005": {"reused": 1},
            "s150": {"reused": 1},
            **{f"t{i}": {"succeeded": 1} for i in range(7) if i != 3},
            "t3": {"reused": 1},
        }
    finally:
        records.close()


def test_a_new_run_is_recorded_as_it_reads_back(tmp_path: Path) -> None:
    records = RunRecords.in_state_dir(tmp_path)
    try:
        created = records.create("r1", ["b", "a"], ["2024-01-02", "2024-01-01"])
        assert created == records.get("r1")
        assert created.status == "running" and created.pid == os.getpid()
        assert records.unfinished(["a", "b"], ["2024-01-01", "2024-01-02"]) == created
    finally:
        records.close()


def test_a_progress_method_set_on_the_instance_is_told_of_every_step(tmp_path: Path) -> None:
    from flowstone_host.runtime import Progress

    seen: list[tuple[str, str]] = []
    progress = Progress()
    progress.step_finished = lambda asset, partition, status: seen.append((asset, status))  # type: ignore[method-assign]
    assets = [Asset("source", compute=W + "source")]
    assets += [Asset("s0", compute=W + "plus_one", deps=("source",))]
    snap = snapshot(assets, tmp_path)
    result = materialize(snap, ["s0"], state_dir=tmp_path, callables=POLICY, progress=progress)
    assert result.ok
    assert seen == [("source", "succeeded"), ("s0", "succeeded")]
