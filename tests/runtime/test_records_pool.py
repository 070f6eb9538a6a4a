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
