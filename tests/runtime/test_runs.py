"""Which run a materialization is: resume an unfinished one, --fresh, --run-id, owners."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowstone_host import Conflict
from flowstone_host.manifest.model import Asset
from flowstone_host.runtime import RunRecords, materialize
from tests.runtime import work
from tests.runtime.helpers import POLICY, W, snapshot


def flaky(tmp_path: Path) -> tuple[object, list[Asset]]:
    from flowstone_host.manifest.model import Branch, Parallel, freeze

    spec = Parallel(branches=freeze({"a": Branch(W + "branch_ok")}), join=W + "join_flaky")
    assets = [Asset("p", parallel=spec)]
    return snapshot(assets, tmp_path), assets


def test_an_unfinished_run_of_the_same_request_is_resumed_unless_fresh(tmp_path: Path) -> None:
    snap, _ = flaky(tmp_path)
    first = materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)  # type: ignore[arg-type]
    assert not first.ok
    fresh = materialize(snap, ["p"], fresh=True, state_dir=tmp_path, callables=POLICY)  # type: ignore[arg-type]
    assert not fresh.resumed and fresh.run_id != first.run_id
    work.JOIN_FAILS["on"] = False
    resumed = materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)  # type: ignore[arg-type]
    assert resumed.resumed and resumed.run_id == fresh.run_id and resumed.record.attempts == 2
    older = materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)  # type: ignore[arg-type]
    assert older.resumed and older.run_id == first.run_id  # the first is still unfinished
    new = materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)  # type: ignore[arg-type]
    assert not new.resumed  # every run succeeded: nothing unfinished


def test_a_run_whose_process_is_alive_is_not_taken_over(tmp_path: Path) -> None:
    records = RunRecords.in_state_dir(tmp_path)
    records.create("busy", ["p"], None)
    with records._write() as conn:  # another live process of this machine owns it
        conn.execute("UPDATE runs SET pid = ? WHERE run_id = 'busy'", (os.getppid(),))
    records.close()
    snap, _ = flaky(tmp_path)
    with pytest.raises(Conflict) as caught:
        materialize(snap, ["p"], state_dir=tmp_path, callables=POLICY)  # type: ignore[arg-type]
    assert caught.value.run_id == "busy"


def test_run_records_list_newest_first_with_who_and_what(tmp_path: Path) -> None:
    snap = snapshot([Asset("source", compute=W + "source")], tmp_path)
    ids = [
        materialize(snap, ["source"], state_dir=tmp_path, callables=POLICY).run_id for _ in range(3)
    ]
    records = RunRecords.in_state_dir(tmp_path)
    listed = records.list(limit=2)
    assert [r.run_id for r in listed] == ids[::-1][:2]
    assert listed[0].pid == os.getpid() and listed[0].assets == ["source"]
    assert listed[0].status == "succeeded" and listed[0].finished_at is not None
    records.close()
