"""The Host's Python API on real files: reload transactions, last good versions, leases."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from host_tree import Tree, asset_doc, doc, header

from flowstone_host import telemetry
from flowstone_host.host.manifest_tree import ManifestTree


def _actions(report: Any) -> dict[str, str]:
    return {f"{c.kind}/{c.name}": c.action for c in report.changes}


def test_unchanged_declarations_keep_their_live_instances(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.io("warehouse"), tree.io("lake"))
    host = make_host()
    assert host.start().outcome == "applied"
    warehouse = host.snapshot().io_managers.resolve("warehouse").instance
    lake = host.snapshot().io_managers.resolve("lake").instance

    assert host.reload("watch").outcome == "unchanged"  # nothing changed on disk
    tree.write("a.yaml", tree.io("warehouse"), tree.io("lake", label="lake-v2"))
    report = host.reload("watch")

    assert _actions(report) == {"IOManager/warehouse": "reused", "IOManager/lake": "replaced"}
    assert host.snapshot().io_managers.resolve("warehouse").instance is warehouse
    assert host.snapshot().io_managers.resolve("lake").instance is not lake
    assert tree.events() == ["open warehouse", "open lake", "open lake-v2", "close lake"]


def test_a_failing_file_keeps_its_last_good_version_while_others_apply(
    tree: Tree, make_host: Any
) -> None:
    tree.write("a.yaml", tree.io("warehouse"))
    tree.write("b.yaml", tree.io("lake"))
    host = make_host()
    host.start()
    tree.write(
        "a.yaml",
        header("IOManager", "warehouse") + "spec: {plugin: journal, config: {journal: [}\n",
    )
    tree.write("b.yaml", tree.io("lake"), tree.io("pond"))

    report = host.reload("watch")

    assert report.outcome == "partial"
    assert list(report.rejected_files) == [str(tree.plugins / "a.yaml")]
    assert host.snapshot().io_managers.names() == ["lake", "pond", "warehouse"]
    (rejected,) = host.status()["rejected_files"]
    error = rejected["errors"][0]
    assert rejected["file"].endswith("a.yaml") and (error["line"], error["column"]) == (4, 44)


def test_a_reference_to_what_a_failed_file_would_add_is_rejected_too(
    tree: Tree, make_host: Any
) -> None:
    tree.write("a.yaml", tree.io("warehouse"))
    host = make_host()
    host.start()
    tree.write(
        "a.yaml",
        tree.io("warehouse"),
        header("IOManager", "lake") + "spec: {plugn: memory}\n",  # misspelled: a shape error
    )
    tree.write("b.yaml", asset_doc("orders", io_manager="lake"))

    report = host.reload("watch")

    assert set(report.rejected_files) == {
        str(tree.plugins / "a.yaml"),
        str(tree.plugins / "b.yaml"),
    }
    codes = [i.code for i in report.rejected_files[str(tree.plugins / "b.yaml")]]
    assert codes and all(code.startswith("ref.") for code in codes)
    assert "orders" not in host.snapshot().assets
    assert host.snapshot().io_managers.names() == ["warehouse"]


def test_an_unloadable_plugin_fails_its_declaration_not_its_file(
    tree: Tree, make_host: Any
) -> None:
    tree.write(
        "a.yaml",
        tree.io("warehouse"),
        header("IOManager", "lake") + "spec: {plugin: no-such-plugin}\n",
        asset_doc("orders", io_manager="lake"),
        asset_doc("invoices", io_manager="warehouse"),
    )
    host = make_host()

    report = host.start()

    assert report.outcome == "partial" and report.rejected_files == {}
    assert _actions(report) == {
        "IOManager/warehouse": "added",
        "IOManager/lake": "failed",
        "Asset/orders": "failed",
        "Asset/invoices": "added",
    }
    status = {d["name"]: d for d in host.status()["declarations"] + host.status()["assets"]}
    assert (
        status["lake"]["state"] == "failed"
        and "No plugin 'no-such-plugin'" in status["lake"]["reason"]
    )
    assert status["orders"]["reason"] == (
        f"its IOManager 'lake' is not loaded ({status['lake']['reason']})"
    )
    assert host.snapshot().io_managers.names() == ["warehouse"]


def test_a_valid_change_that_breaks_another_file_is_held_back(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.io("lake"))
    tree.write("b.yaml", asset_doc("orders", io_manager="lake"))
    host = make_host()
    host.start()
    tree.write("a.yaml", tree.io("pond"))  # valid alone, but orders needs lake

    report = host.reload("watch")

    assert report.rejected_files[str(tree.plugins / "a.yaml")][0].code == "reload.held_back"
    assert host.snapshot().io_managers.names() == ["lake"]
    assert "orders" in host.snapshot().assets


def test_deleting_a_manifest_tears_down_what_it_declared(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.resource("db"))
    gone = tree.write("b.yaml", tree.resource("cache"))
    host = make_host()
    host.start()
    gone.unlink()

    report = host.reload("watch")

    assert _actions(report)["Resource/cache"] == "removed"
    assert host.snapshot().resources.names() == ["db"]
    assert tree.events() == ["setup db", "setup cache", "teardown cache"]


def test_a_failed_new_version_keeps_the_previous_instance(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.resource("db"), tree.resource("cache"))
    host = make_host()
    host.start()
    handle = host.snapshot().resources.resolve("db").handle
    tree.write("a.yaml", tree.resource("db", fail_setup=True), tree.resource("cache", label="c2"))

    report = host.reload("watch")

    (failed,) = [c for c in report.changes if c.action == "failed"]
    assert (failed.name, failed.kept) == ("db", True) and "refuses to start" in (
        failed.reason or ""
    )
    assert host.snapshot().resources.resolve("db").handle is handle
    state = next(d for d in host.status()["declarations"] if d["name"] == "db")
    assert state["state"] == "active" and state["reason"] is None  # the one still serving...
    assert state["source"].endswith("a.yaml:3:18")
    assert state["distribution"] == "flowstone-fixture-plugins"
    newer = state["newer_version_rejected"]  # ...and the version that failed
    assert newer["state"] == "failed" and "refuses to start" in newer["reason"]
    assert newer["config"]["fail_setup"] is True
    assert host.ready() == (True, [])  # the previous version still serves, healthy
    assert _actions(report)["Resource/cache"] == "replaced"


def test_stop_tears_down_in_reverse_order_of_setup(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.resource("first"), tree.resource("second"), tree.resource("third"))
    host = make_host()
    host.start()
    assert host.stop() is True
    assert tree.events()[3:] == ["teardown third", "teardown second", "teardown first"]


def test_runs_in_flight_keep_their_snapshot_until_they_finish(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.resource("db"))
    host = make_host()
    host.start()
    with host.lease() as snapshot:
        (tree.plugins / "a.yaml").unlink()
        host.reload("watch")
        assert "db" not in host.snapshot().resources
        assert snapshot.resources.resolve("db").handle == {"label": "db"}
        assert tree.events() == ["setup db"]  # not torn down under the run
    assert tree.events() == ["setup db", "teardown db"]


def test_concurrent_triggers_never_overlap_and_none_is_lost(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.io("warehouse"))
    host = make_host()
    host.start()
    running, peak, calls = [0], [0], [0]
    lock = threading.Lock()
    inner = host._reload

    def instrumented(trigger: str) -> Any:
        with lock:
            running[0] += 1
            calls[0] += 1
            peak[0] = max(peak[0], running[0])
        if calls[0] == 1:  # a change lands while the first reload runs
            tree.write("b.yaml", tree.io("late"))
            time.sleep(0.05)
        try:
            return inner(trigger)
        finally:
            with lock:
                running[0] -= 1

    host._reload = instrumented  # type: ignore[method-assign]
    threads = [threading.Thread(target=host.reload, args=("watch",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak[0] == 1
    assert 2 <= calls[0] < 8  # coalesced, and the late change got a reload of its own
    assert "late" in host.snapshot().io_managers


def test_health_checks_drive_readiness(tree: Tree, make_host: Any) -> None:
    health_file = tree.plugins.parent / "db.ok"
    health_file.touch()
    tree.write("a.yaml", tree.resource("db", health_file=str(health_file)))
    host = make_host()
    host.start()
    assert host.ready() == (True, [])
    health_file.unlink()
    with telemetry.capture(("flowstone", "health")) as events:
        host.check_health()
    ready, reasons = host.ready()
    assert not ready and "db.ok is missing" in reasons[0]
    assert events[-1][2] == {"plugin_kind": "Resource", "name": "db", "healthy": False}
    health_file.touch()
    host.check_health()
    assert host.ready() == (True, [])


def test_status_redacts_secrets(
    tree: Tree, make_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTONE_LABEL", "from-the-environment")
    tree.write("a.yaml", tree.resource_labelled_from_env("db", "FLOWSTONE_LABEL"))
    host = make_host()
    host.start()
    text = json.dumps(host.status())
    assert "from-the-environment" not in text and "<redacted>" in text


def test_declared_telemetry_emitters_are_attached_and_detached(
    tree: Tree, make_host: Any, caplog: pytest.LogCaptureFixture
) -> None:
    emitter = doc("TelemetryEmitter", "log", "logging", logger="test.emitter", level="INFO")
    tree.write("a.yaml", emitter)
    host = make_host()
    host.start()
    with caplog.at_level("INFO", logger="test.emitter"):
        telemetry.execute(("flowstone", "test", "event"))
        (tree.plugins / "a.yaml").unlink()
        host.reload("watch")
        telemetry.execute(("flowstone", "test", "after"))
    seen = [r.getMessage() for r in caplog.records if r.name == "test.emitter"]
    assert any(m.startswith("flowstone.test.event") for m in seen)
    assert not any(m.startswith("flowstone.test.after") for m in seen)


def test_a_manual_reload_sees_a_changed_environment_variable(
    tree: Tree, make_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTONE_LABEL", "blue")
    tree.write("a.yaml", tree.resource_labelled_from_env("db", "FLOWSTONE_LABEL"))
    host = make_host()
    host.start()
    monkeypatch.setenv("FLOWSTONE_LABEL", "green")
    assert host.reload("watch").outcome == "unchanged"  # no file changed: nothing re-read
    report = host.reload("manual")
    assert _actions(report) == {"Resource/db": "replaced"}
    assert tree.events() == ["setup blue", "setup green", "teardown blue"]


def test_a_reload_that_breaks_inside_keeps_the_running_configuration(
    tree: Tree, make_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree.write("a.yaml", tree.io("warehouse"))
    host = make_host()
    host.start()
    warehouse = host.snapshot().io_managers.resolve("warehouse").instance

    def broken(self: Any, current: Any) -> Any:
        raise RuntimeError("a bug in validation")

    monkeypatch.setattr(ManifestTree, "validate", broken)
    tree.write("a.yaml", tree.io("warehouse", label="v2"))
    report = host.reload("watch")

    assert (report.outcome, report.ok) == ("error", False)
    assert report.to_dict()["error"] == "RuntimeError: a bug in validation"
    assert host.snapshot().io_managers.resolve("warehouse").instance is warehouse
    assert host.alive()


def test_a_replaced_declaration_keeps_its_health_series(tree: Tree, make_host: Any) -> None:
    from prometheus_client import generate_latest

    tree.write("a.yaml", tree.resource("db"))
    host = make_host()
    host.start()
    tree.write("a.yaml", tree.resource("db", label="db-v2"))
    assert _actions(host.reload("watch")) == {"Resource/db": "replaced"}
    metrics = generate_latest(host.metrics_registry).decode()
    assert 'flowstone_health_checks{kind="Resource",name="db"} 1.0' in metrics
    (tree.plugins / "a.yaml").unlink()
    host.reload("watch")
    metrics = generate_latest(host.metrics_registry).decode()
    assert 'flowstone_health_checks{kind="Resource",name="db"}' not in metrics


def test_resources_are_set_up_after_what_they_depend_on_and_torn_down_before(
    tree: Tree, make_host: Any
) -> None:
    pool = tree.resource("pool").replace("spec: {", 'spec: {"depends_on": ["secrets"], ', 1)
    cache = tree.resource("cache").replace("spec: {", 'spec: {"depends_on": ["pool"], ', 1)
    tree.write("a.yaml", cache, pool, tree.resource("secrets"))  # declared in reverse
    host = make_host()
    host.start()
    assert tree.events() == ["setup secrets", "setup pool", "setup cache"]
    host.stop()
    assert tree.events()[3:] == ["teardown cache", "teardown pool", "teardown secrets"]


def test_a_resource_that_cannot_be_set_up_fails_what_depends_on_it(
    tree: Tree, make_host: Any
) -> None:
    pool = tree.resource("pool").replace("spec: {", 'spec: {"depends_on": ["db"], ', 1)
    tree.write("a.yaml", tree.resource("db", fail_setup=True), pool, tree.resource("other"))
    host = make_host()
    report = host.start()
    assert _actions(report) == {
        "Resource/db": "failed",
        "Resource/pool": "failed",
        "Resource/other": "added",
    }
    [pool_state] = [d for d in host.status()["declarations"] if d["name"] == "pool"]
    assert pool_state["reason"].startswith("it depends on resource 'db', which is not set up (")
    assert tree.events() == ["setup other"]


def test_a_stopping_host_takes_no_new_work_and_sets_nothing_up_again(
    tree: Tree, make_host: Any
) -> None:
    from flowstone_host import Unavailable

    tree.write("a.yaml", tree.resource("db"))
    host = make_host()
    host.start()
    host.stop()
    report = host.reload("http")  # e.g. a POST /reload racing the shutdown
    assert (report.outcome, report.to_dict()["error"]) == ("error", "the host is stopping")
    with pytest.raises(Unavailable), host.lease():
        pass
    assert tree.events() == ["setup db", "teardown db"]
    assert host.ready() == (False, ["the host is stopping"])


def test_a_reload_that_fails_midway_tears_down_what_it_set_up_and_tries_again(
    tree: Tree, make_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowstone_host.host.transaction import Transaction

    tree.write("a.yaml", tree.io("warehouse"))
    host = make_host()
    host.start()
    tree.write("b.yaml", tree.io("lake"), asset_doc("orders", io_manager="lake"))

    def broken(self: Any, asset: Any) -> Any:
        raise RuntimeError("a bug after lake was set up")

    with monkeypatch.context() as patch:
        patch.setattr(Transaction, "_asset", broken)
        assert host.reload("watch").outcome == "error"
    assert tree.events() == ["open warehouse", "open lake", "close lake"]
    assert "lake" not in host.snapshot().io_managers
    assert host.reload("rescan").outcome == "applied"  # the change was not taken as seen
    assert "orders" in host.snapshot().assets


def test_an_unreadable_file_keeps_its_last_good_version(
    tree: Tree, make_host: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    path = tree.write("a.yaml", tree.io("warehouse"))
    host = make_host()
    host.start()
    real_open = os.open

    def refuse(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    report = host.reload("manual")
    [issue] = report.rejected_files[str(path)]
    assert issue.code == "io.unreadable" and "Permission denied" in issue.message
    assert host.snapshot().io_managers.names() == ["warehouse"]
    assert tree.events() == ["open warehouse"]


def test_deleting_a_file_another_one_needs_is_held_back(tree: Tree, make_host: Any) -> None:
    gone = tree.write("a.yaml", tree.io("warehouse"))
    tree.write("b.yaml", tree.io("lake"), asset_doc("orders", io_manager="warehouse"))
    host = make_host()
    host.start()
    gone.unlink()

    report = host.reload("watch")

    [issue] = report.rejected_files[str(gone)]
    assert issue.code == "reload.held_back" and issue.message.startswith("Held back: with deleting")
    assert host.snapshot().io_managers.names() == ["lake", "warehouse"]
    assert "orders" in host.snapshot().assets
    tree.write("b.yaml", tree.io("lake"))  # the fix: b no longer needs warehouse
    host.reload("watch")
    assert host.snapshot().io_managers.names() == ["lake"]


def test_an_asset_does_not_fall_back_to_memory_when_its_default_cannot_load(
    tree: Tree, make_host: Any
) -> None:
    tree.write(
        "a.yaml",
        header("IOManager", "default") + "spec: {plugin: postgress}\n",
        asset_doc("orders"),
    )
    host = make_host()
    report = host.start()
    assert _actions(report) == {"IOManager/default": "failed", "Asset/orders": "failed"}
    assert "orders" not in host.snapshot().assets


def test_a_person_s_request_is_covered_only_by_a_person_s_reload() -> None:
    from flowstone_host.host.lifecycle import Tickets

    tickets = Tickets()
    person = tickets.take(manual=True)  # made while another reload runs
    watcher = tickets.take(manual=False)
    tickets.served(tickets.begin(manual=False))  # the watcher's reload wins the lock
    assert tickets.covered(False, watcher)
    assert not tickets.covered(True, person)  # so the person's reload still runs
    tickets.served(tickets.begin(manual=True))
    assert tickets.covered(True, person)
    later_watch = tickets.take(manual=False)
    tickets.served(tickets.begin(manual=True))  # a person's reload covers a watcher's request
    assert tickets.covered(False, later_watch)


def test_changing_a_resource_sets_up_again_what_depends_on_it(tree: Tree, make_host: Any) -> None:
    def pool(**config: Any) -> str:
        return tree.resource("pool", **config).replace(
            "spec: {", 'spec: {"depends_on": ["tunnel"], ', 1
        )

    tree.write("a.yaml", tree.resource("tunnel"), pool(), tree.resource("other"))
    host = make_host()
    host.start()
    tree.write("a.yaml", tree.resource("tunnel", label="tunnel-2"), pool(), tree.resource("other"))
    report = host.reload("watch")
    assert _actions(report) == {
        "Resource/tunnel": "replaced",
        "Resource/pool": "replaced",
        "Resource/other": "reused",
    }
    host.stop()
    assert tree.events() == [
        *("setup tunnel", "setup pool", "setup other", "setup tunnel-2", "setup pool"),
        *("teardown pool", "teardown tunnel"),  # the old ones, dependents first
        *("teardown pool", "teardown tunnel-2", "teardown other"),  # at stop: newest first
    ]


def test_a_long_dependency_chain_is_ordered_without_recursion() -> None:
    from flowstone_host.host.transaction import _in_dependency_order
    from flowstone_host.manifest.model import Declaration

    n = 5000
    chain = {
        ("Resource", f"r{i}"): Declaration(
            "Resource", f"r{i}", "journal", {}, depends_on=(f"r{i + 1}",) if i + 1 < n else ()
        )
        for i in range(n)
    }
    order = [key[1] for key, _ in _in_dependency_order(chain)]
    assert order == [f"r{i}" for i in reversed(range(n))]
