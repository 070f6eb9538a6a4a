"""Plain assets: dependency order, reuse, --force, partitions, spans, the boundary."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowstone_host import telemetry
from flowstone_host.boundary import PLUGIN_CALL
from flowstone_host.manifest.model import Asset, freeze
from flowstone_host.runtime import RunRecords, materialize
from tests.runtime import work
from tests.runtime.helpers import POLICY, W, snapshot


def chain() -> list[Asset]:
    return [
        Asset("source", compute=W + "source"),
        Asset("plus_one", compute=W + "plus_one", deps=("source",)),
        Asset("times_ten", compute=W + "times_ten", deps=("plus_one",)),
    ]


def test_upstream_first_in_dependency_order_then_reused(tmp_path: Path) -> None:
    snap = snapshot(chain(), tmp_path)
    result = materialize(snap, ["times_ten"], state_dir=tmp_path, callables=POLICY)
    assert result.ok
    assert work.CALLS == ["source:None", "plus_one", "times_ten"]
    assert snap.io_managers.resolve("default").instance.load("times_ten", None) == 20
    work.CALLS.clear()
    again = materialize(snap, ["times_ten"], state_dir=tmp_path, callables=POLICY)
    assert again.ok and not again.resumed and again.run_id != result.run_id
    assert work.CALLS == []
    assert [s.status for s in again.record.steps] == ["reused"] * 3


def test_force_materializes_everything_again(tmp_path: Path) -> None:
    snap = snapshot(chain(), tmp_path)
    materialize(snap, ["times_ten"], state_dir=tmp_path, callables=POLICY)
    work.CALLS.clear()
    forced = materialize(snap, ["times_ten"], force=True, state_dir=tmp_path, callables=POLICY)
    assert forced.ok and work.CALLS == ["source:None", "plus_one", "times_ten"]


def test_only_missing_upstream_is_materialized(tmp_path: Path) -> None:
    snap = snapshot(chain(), tmp_path)
    materialize(snap, ["plus_one"], state_dir=tmp_path, callables=POLICY)
    work.CALLS.clear()
    materialize(snap, ["times_ten"], state_dir=tmp_path, callables=POLICY)
    assert work.CALLS == ["times_ten"]


def test_partitioned_dependency_fans_in_as_a_mapping(tmp_path: Path) -> None:
    assets = [
        Asset("source", compute=W + "source", partitions=freeze(["a", "bb"])),
        Asset("plus_one", compute=W + "plus_one", deps=("source",)),
    ]
    snap = snapshot(assets, tmp_path)
    assert materialize(snap, ["plus_one"], state_dir=tmp_path, callables=POLICY).ok
    assert snap.io_managers.resolve("default").instance.load("plus_one", None) == 1 + 2 + 1
    only = materialize(snap, ["source"], ["bb"], force=True, state_dir=tmp_path, callables=POLICY)
    assert [s.partition for s in only.record.steps] == ["bb"]


def test_a_failing_compute_fails_the_run_and_records_the_error(tmp_path: Path) -> None:
    assets = [Asset("bad", compute=W + "branch_fails")]
    result = materialize(snapshot(assets, tmp_path), ["bad"], state_dir=tmp_path, callables=POLICY)
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "internal_error" and "broke" in result.error.message
    (step,) = result.record.steps
    assert step.status == "failed" and step.error is not None
    assert RunRecords.in_state_dir(tmp_path).get(result.run_id).status == "failed"


def test_callables_outside_the_allow_list_are_refused(tmp_path: Path) -> None:
    assets = [Asset("x", compute="os:getcwd")]
    result = materialize(snapshot(assets, tmp_path), ["x"], state_dir=tmp_path, callables=POLICY)
    assert result.error is not None and result.error.code == "permission_denied"


def test_spans_carry_run_asset_partition_and_plugin_calls_go_through_the_boundary(
    tmp_path: Path,
) -> None:
    snap = snapshot(chain(), tmp_path)
    with telemetry.capture(("flowstone",)) as events:
        result = materialize(snap, ["plus_one"], state_dir=tmp_path, callables=POLICY)
    names = [(e[:-1], e[-1]) for e, _, _ in events]
    for event in (("flowstone", "materialize"), ("flowstone", "io", "store")):
        assert (event, "start") in names and (event, "stop") in names
    assert (("flowstone", "io", "load"), "stop") in names
    stores = [md for e, _, md in events if e == ("flowstone", "io", "store", "stop")]
    assert {md["asset"] for md in stores} == {"source", "plus_one"}
    assert all(md["run_id"] == result.run_id and "partition" in md for md in stores)
    plugin_calls = {
        (md["plugin_kind"], md["method"]) for e, _, md in events if e[:3] == PLUGIN_CALL
    }
    assert {("IOManager", "store"), ("IOManager", "load"), ("IOManager", "exists")} <= plugin_calls


def test_exception_events_carry_the_normalized_error(tmp_path: Path) -> None:
    assets = [Asset("bad", compute=W + "branch_fails")]
    with telemetry.capture(("flowstone", "materialize")) as events:
        materialize(snapshot(assets, tmp_path), ["bad"], state_dir=tmp_path, callables=POLICY)
    (failure,) = [md for e, _, md in events if e[-1] == "exception"]
    assert failure["error"].code == "internal_error" and failure["asset"] == "bad"


def test_scatter_item_spans_and_reader_coordinator_executor_calls(tmp_path: Path) -> None:
    from tests.runtime.helpers import scatter_asset

    asset = scatter_asset("s", "fail_2pct", tolerated={"count": 10}, batch_size=50)
    with telemetry.capture(("flowstone",)) as events:
        import os

        os.environ["FS_TEST_ITEMS"] = "100"
        try:
            materialize(snapshot([asset], tmp_path), ["s"], state_dir=tmp_path, callables=POLICY)
        finally:
            del os.environ["FS_TEST_ITEMS"]
    items = [md for e, _, md in events if e[:3] == ("flowstone", "scatter", "item")]
    failed = [md for md in items if "error" in md]
    assert len([md for md in items if md is not None]) == 200  # start + end of each
    assert len(failed) == 2 and all(md["error"].code == "validation_error" for md in failed)
    kinds = {md["plugin_kind"] for e, _, md in events if e[:3] == PLUGIN_CALL}
    assert {"ItemReader", "ScatterCoordinator", "Executor", "IOManager"} <= kinds


@pytest.mark.parametrize("copy", [True, False])
def test_io_config_reaches_the_io_manager_as_opts(tmp_path: Path, copy: bool) -> None:
    assets = [Asset("source", compute=W + "source", resolved_io_config=freeze({"copy": copy}))]
    seen: list[dict[str, object]] = []
    snap = snapshot(assets, tmp_path)
    io = snap.io_managers.resolve("default").instance
    original = io.store
    io.store = lambda *a, **opts: (seen.append(opts), original(*a, **opts))  # type: ignore[method-assign]
    materialize(snap, ["source"], state_dir=tmp_path, callables=POLICY)
    assert seen == [{"copy": copy}]
