"""Reload transactions on real files: assets kept, replaced or refused; the paths of health
failures, retries and dependency diamonds that the broader host tests do not reach."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from host_tree import Tree, header

from flowstone_host import Health, Unavailable
from flowstone_host.host.report import DeclarationState
from flowstone_host.host.transaction import Transaction, _in_dependency_order
from flowstone_host.loading.entry import Entry
from flowstone_host.manifest.model import Asset, Declaration, ManifestSet


def _actions(report: Any) -> dict[str, str]:
    return {f"{c.kind}/{c.name}": c.action for c in report.changes}


def _asset(name: str, **spec: Any) -> str:
    spec.setdefault("compute", "flowstone_host.examples.demo_assets:orders")
    return header("Asset", name) + f"spec: {json.dumps(spec)}\n"


def _scatter_asset(name: str, reader: str) -> str:
    scatter = {
        "reader": reader,
        "reader_config": {"function": "flowstone_host.examples.demo_assets:order_lines"},
        "item": "flowstone_host.examples.demo_assets:enrich",
        "gather": "flowstone_host.examples.demo_assets:collect",
    }
    return header("Asset", name) + f"spec: {json.dumps({'scatter': scatter})}\n"


def _depending(tree: Tree, name: str, *needs: str, **config: Any) -> str:
    return tree.resource(name, **config).replace(
        "spec: {", f'spec: {{"depends_on": {json.dumps(list(needs))}, ', 1
    )


def _states(host: Any) -> dict[str, dict[str, Any]]:
    status = host.status()
    return {d["name"]: d for d in status["declarations"] + status["assets"]}


# -- assets ---------------------------------------------------------------------------------


def test_an_unchanged_asset_is_reused_and_changes_nothing(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.io("lake"), _asset("orders", io_manager="lake"))
    host = make_host()
    host.start()
    generation = host.generation

    report = host.reload("manual")  # a person's reload: the transaction runs in full

    assert _actions(report) == {"IOManager/lake": "reused", "Asset/orders": "reused"}
    assert (report.outcome, host.generation) == ("unchanged", generation)
    assert _states(host)["orders"]["state"] == "active"


def test_an_edited_asset_is_replaced_and_the_snapshot_holds_the_new_version(
    tree: Tree, make_host: Any
) -> None:
    tree.write("a.yaml", tree.io("lake"), _asset("orders", io_manager="lake"))
    host = make_host()
    host.start()
    generation = host.generation

    tree.write("a.yaml", tree.io("lake"), _asset("orders", io_manager="lake", description="v2"))
    report = host.reload("watch")

    assert _actions(report) == {"IOManager/lake": "reused", "Asset/orders": "replaced"}
    assert report.outcome == "applied" and host.generation == generation + 1
    assert host.snapshot().assets.resolve("orders").description == "v2"
    assert host.reload("manual").outcome == "unchanged"  # and now it is the live version
    assert _actions(host.last_reload)["Asset/orders"] == "reused"


def test_a_new_asset_is_added_and_a_deleted_one_removed(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", _asset("orders"))
    host = make_host()
    assert _actions(host.start()) == {"Asset/orders": "added"}
    tree.write("a.yaml", _asset("invoices"))
    report = host.reload("watch")
    assert _actions(report) == {"Asset/invoices": "added", "Asset/orders": "removed"}
    assert host.snapshot().assets.names() == ["invoices"]
    assert [a["name"] for a in host.status()["assets"]] == ["invoices"]


def test_an_asset_on_the_built_in_memory_io_manager_loads_without_declaring_it(
    tree: Tree, make_host: Any
) -> None:
    tree.write("a.yaml", _asset("orders"))  # io_manager: default, declared nowhere
    host = make_host()

    report = host.start()

    assert (report.outcome, _actions(report)) == ("applied", {"Asset/orders": "added"})
    assert "orders" in host.snapshot().assets
    fallback = host.snapshot().io_managers.resolve("default")
    assert fallback.plugin == "memory" and host.snapshot().io_managers.names() == []


def test_an_asset_that_reads_a_failed_asset_fails_too(tree: Tree, make_host: Any) -> None:
    tree.write(
        "a.yaml",
        header("IOManager", "lake") + "spec: {plugin: no-such-plugin}\n",
        _asset("orders", io_manager="lake"),
        _asset("totals", deps=["orders"]),
        _asset("report", deps=["totals"]),
        _asset("other"),
    )
    host = make_host()

    report = host.start()

    assert _actions(report) == {
        "IOManager/lake": "failed",
        "Asset/orders": "failed",
        "Asset/totals": "failed",
        "Asset/report": "failed",
        "Asset/other": "added",
    }
    states = _states(host)
    assert states["totals"]["reason"] == "it reads asset 'orders', which is not loaded"
    assert states["report"]["reason"] == "it reads asset 'totals', which is not loaded"
    assert host.snapshot().assets.names() == ["other"]


def test_a_scatter_asset_whose_reader_cannot_load_is_refused(tree: Tree, make_host: Any) -> None:
    tree.write(
        "a.yaml",
        header("ItemReader", "lines") + "spec: {plugin: no-such-reader}\n",
        _scatter_asset("enriched", reader="lines"),
    )
    host = make_host()

    report = host.start()

    assert _actions(report) == {"ItemReader/lines": "failed", "Asset/enriched": "failed"}
    assert _states(host)["enriched"]["reason"].startswith("its ItemReader 'lines' is not loaded")
    assert "enriched" not in host.snapshot().assets


def test_a_scatter_asset_with_a_loaded_reader_is_admitted(tree: Tree, make_host: Any) -> None:
    tree.write(
        "a.yaml",
        header("ItemReader", "lines") + "spec: {plugin: custom}\n",
        _scatter_asset("enriched", reader="lines"),
    )
    host = make_host()
    assert _actions(host.start()) == {"ItemReader/lines": "added", "Asset/enriched": "added"}
    assert "enriched" in host.snapshot().assets


# -- health of a new version ----------------------------------------------------------------


def test_an_unhealthy_new_version_keeps_the_previous_one(tree: Tree, make_host: Any) -> None:
    healthy = tree.plugins.parent / "db.ok"
    healthy.touch()
    tree.write("a.yaml", tree.resource("db", health_file=str(healthy)))
    host = make_host()
    host.start()
    handle = host.snapshot().resources.resolve("db").handle
    missing = tree.plugins.parent / "db-v2.ok"  # never created: v2 is unhealthy

    tree.write("a.yaml", tree.resource("db", label="db-v2", health_file=str(missing)))
    report = host.reload("watch")

    (change,) = report.changes
    assert (change.action, change.kept) == ("failed", True)
    assert change.reason == f"new version is unhealthy: {missing} is missing"
    assert host.snapshot().resources.resolve("db").handle is handle
    state = _states(host)["db"]
    assert state["state"] == "active"  # the previous version serves...
    assert state["distribution"] == "flowstone-fixture-plugins"
    assert state["newer_version_rejected"]["reason"] == change.reason  # ...v2 failed
    assert host.ready() == (True, [])  # the previous version still serves, healthy
    assert tree.events() == ["setup db", "setup db-v2", "teardown db-v2"]  # v2 torn down now


def test_an_unhealthy_first_version_is_added_but_not_ready(tree: Tree, make_host: Any) -> None:
    missing = tree.plugins.parent / "db.ok"
    tree.write("a.yaml", tree.resource("db", health_file=str(missing)))
    host = make_host()

    report = host.start()

    assert _actions(report) == {"Resource/db": "added"}
    assert "db" in host.snapshot().resources
    ready, reasons = host.ready()
    assert not ready and reasons == [f"resource 'db' is unhealthy: {missing} is missing"]


# -- failed declarations and retries ----------------------------------------------------------


def test_a_failed_declaration_is_retried_only_by_a_person_s_reload(
    tree: Tree, make_host: Any
) -> None:
    tree.write("a.yaml", tree.resource("db", fail_setup=True))
    tree.write("b.yaml", tree.io("lake"))
    host = make_host()
    assert _actions(host.start())["Resource/db"] == "failed"

    tree.write("b.yaml", tree.io("lake", label="lake-2"))  # another file changes
    watched = host.reload("watch")

    assert _actions(watched) == {"IOManager/lake": "replaced"}  # db is not loaded again
    assert _states(host)["db"]["state"] == "failed"
    manual = host.reload("manual")
    assert _actions(manual) == {"Resource/db": "failed", "IOManager/lake": "reused"}
    assert _states(host)["db"]["state"] == "failed"


# -- resources that depend on resources ---------------------------------------------------------


def test_a_dependency_diamond_sets_each_up_once_after_what_it_needs(
    tree: Tree, make_host: Any
) -> None:
    tree.write(
        "a.yaml",
        _depending(tree, "app", "pool", "tunnel"),
        _depending(tree, "pool", "tunnel"),
        tree.resource("tunnel"),
        tree.resource("cache"),
    )
    host = make_host()

    report = host.start()

    assert report.outcome == "applied"
    assert host.snapshot().resources.names() == ["app", "cache", "pool", "tunnel"]
    assert tree.events() == ["setup tunnel", "setup pool", "setup app", "setup cache"]


def test_a_reload_that_changes_none_of_a_resource_s_needs_reuses_it(
    tree: Tree, make_host: Any
) -> None:
    def write(other_label: str) -> None:
        tree.write(
            "a.yaml",
            tree.resource("tunnel"),
            _depending(tree, "pool", "tunnel"),
            _depending(tree, "app", "pool", "tunnel"),
            tree.resource("other", label=other_label),
        )

    write("other")
    host = make_host()
    host.start()
    write("other-2")
    report = host.reload("watch")
    assert _actions(report) == {
        "Resource/tunnel": "reused",
        "Resource/pool": "reused",
        "Resource/app": "reused",
        "Resource/other": "replaced",
    }


def test_renewing_the_bottom_of_a_diamond_renews_everything_above_it(
    tree: Tree, make_host: Any
) -> None:
    def write(tunnel_label: str) -> None:
        tree.write(
            "a.yaml",
            tree.resource("tunnel", label=tunnel_label),
            _depending(tree, "pool", "tunnel"),
            _depending(tree, "app", "pool"),
            tree.resource("other"),
        )

    write("tunnel")
    host = make_host()
    host.start()
    write("tunnel-2")
    report = host.reload("watch")
    assert _actions(report) == {
        "Resource/tunnel": "replaced",
        "Resource/pool": "replaced",
        "Resource/app": "replaced",
        "Resource/other": "reused",
    }


def _declarations(graph: dict[str, tuple[str, ...]]) -> dict[tuple[str, str], Declaration]:
    return {
        ("Resource", name): Declaration("Resource", name, "journal", {}, depends_on=needs)
        for name, needs in graph.items()
    }


@pytest.mark.parametrize(
    "graph",
    [
        {"app": ("pool", "tunnel"), "pool": ("tunnel",), "tunnel": ()},
        {"app": ("tunnel", "pool"), "pool": ("tunnel",), "tunnel": ()},
        {"a": ("b", "c"), "b": ("d",), "c": ("d",), "d": (), "e": ("a", "d")},
        {"x": ("y",), "y": (), "z": ("y", "x")},
    ],
    ids=["diamond", "diamond-reversed", "double-diamond", "shared-leaf"],
)
def test_dependency_order_keeps_every_declaration_after_its_needs(
    graph: dict[str, tuple[str, ...]],
) -> None:
    order = [key[1] for key, _ in _in_dependency_order(_declarations(graph))]
    assert sorted(order) == sorted(graph)  # each exactly once
    for name, needs in graph.items():
        assert all(order.index(need) < order.index(name) for need in needs), order


def test_dependency_order_keeps_the_reading_order_where_free() -> None:
    graph = {"c": (), "a": ("b",), "b": (), "d": ("c",)}
    order = [key[1] for key, _ in _in_dependency_order(_declarations(graph))]
    assert order == ["c", "b", "a", "d"]


def test_dependency_order_ignores_undeclared_needs_and_breaks_a_cycle() -> None:
    order = _in_dependency_order(_declarations({"a": ("gone", "b"), "b": ("a",)}))
    assert sorted(key[1] for key, _ in order) == ["a", "b"]


def test_a_resource_needing_a_failed_resource_fails_with_the_reason(
    tree: Tree, make_host: Any
) -> None:
    tree.write(
        "a.yaml",
        tree.resource("tunnel", fail_setup=True),
        _depending(tree, "pool", "tunnel"),
    )
    host = make_host()
    report = host.start()
    assert _actions(report) == {"Resource/tunnel": "failed", "Resource/pool": "failed"}
    reason = _states(host)["pool"]["reason"]
    assert reason.startswith("it depends on resource 'tunnel', which is not set up (")
    assert "refuses to start" in reason


def test_status_moves_with_a_declaration_that_moved(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.io("lake"), _asset("orders", io_manager="lake"))
    host = make_host()
    host.start()
    before = _states(host)["lake"]["source"]
    tree.write("a.yaml", "# the declaration moves down a line\n" + tree.io("lake"))
    tree.write("b.yaml", _asset("orders", io_manager="lake"))
    report = host.reload("watch")
    assert _actions(report) == {"IOManager/lake": "reused", "Asset/orders": "reused"}
    states = _states(host)
    assert Path(states["lake"]["source"].rsplit(":", 2)[0]).name == "a.yaml"
    assert before.endswith("a.yaml:3:18") and states["lake"]["source"].endswith("a.yaml:4:18")
    assert Path(states["orders"]["source"].rsplit(":", 2)[0]).name == "b.yaml"


# -- the transaction alone, with a scripted loader and health checker ---------------------------


class _Loader:
    """Builds an entry per declaration; ``fail`` names the ones whose load raises."""

    def __init__(self, *fail: str) -> None:
        self.fail = set(fail)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.torn_down: list[Entry] = []

    def secret_paths(self, declaration: Declaration) -> frozenset[tuple[str | int, ...]]:
        return frozenset()

    def teardown(self, entry: Entry, timeout_s: float | None = None) -> bool:
        self.torn_down.append(entry)
        return True

    def load(self, declaration: Declaration, resources: dict[str, Any]) -> Entry:
        self.calls.append((declaration.name, dict(resources)))
        if declaration.name in self.fail:
            raise Unavailable(f"{declaration.name} is down", distribution="dist", version="9")
        meta = {"distribution": "dist", "version": "1", "other": "x"}
        return Entry(
            declaration.kind,
            declaration.name,
            object(),
            metadata=meta,
            handle=f"handle-of-{declaration.name}",
        )


class _Health:
    """Reports each entry named in ``sick`` unhealthy, the rest healthy."""

    def __init__(self, *sick: str) -> None:
        self.sick = set(sick)

    def check(self, entry: Entry) -> Health:
        return Health.unhealthy("sick") if entry.name in self.sick else Health.ok()

    def start(self, entry: Entry) -> Callable[[], Health]:
        return lambda: self.check(entry)

    def observe(self, state: DeclarationState, health: Health | None) -> None:
        if health is not None and not health.healthy:
            state.state, state.reason = "unhealthy", health.reason


def _resource(name: str, *needs: str, **config: Any) -> Declaration:
    return Declaration("Resource", name, "journal", config, depends_on=needs)


def _run(
    declarations: list[Declaration],
    *,
    assets: tuple[Asset, ...] = (),
    live: dict[tuple[str, str], DeclarationState] | None = None,
    loader: _Loader | None = None,
    health: _Health | None = None,
    retry: bool = False,
) -> Transaction:
    desired = ManifestSet({(d.kind, d.name): d for d in declarations}, {a.name: a for a in assets})
    transaction = Transaction(
        loader or _Loader(),
        live or {},
        desired,
        health or _Health(),
        retry=retry,  # type: ignore[arg-type]
    )
    transaction.run()
    return transaction


def _changes(transaction: Transaction) -> list[tuple[str, str, str | None, bool | None]]:
    return [(c.name, c.action, c.reason, c.kept) for c in transaction.changes]


def test_each_resource_is_loaded_with_the_handles_of_what_it_depends_on() -> None:
    loader = _Loader()
    _run(
        [_resource("app", "pool", "tunnel"), _resource("pool", "tunnel"), _resource("tunnel")],
        loader=loader,
    )
    assert loader.calls == [
        ("tunnel", {}),
        ("pool", {"tunnel": "handle-of-tunnel"}),
        ("app", {"pool": "handle-of-pool", "tunnel": "handle-of-tunnel"}),
    ]


def test_a_load_failure_keeps_what_the_plugin_told_of_itself() -> None:
    done = _run([_resource("db")], loader=_Loader("db"))
    state = done.states["Resource", "db"]
    assert (state.entry, state.state, state.reason) == (None, "failed", "db is down")
    assert dict(state.facts) == {"distribution": "dist", "version": "9"}
    assert _changes(done) == [("db", "failed", "db is down", False)]
    assert done.failed and done.entries() == [] and done.added == []


def test_a_failed_dependency_fails_its_dependents_with_the_plugin_s_facts() -> None:
    done = _run([_resource("pool", "tunnel"), _resource("tunnel")], loader=_Loader("tunnel"))
    pool = done.states["Resource", "pool"]
    reason = "it depends on resource 'tunnel', which is not set up (tunnel is down)"
    assert (pool.state, pool.reason) == ("failed", reason)
    assert dict(pool.facts) == {"distribution": "flowstone-fixture-plugins", "version": "1.0.0"}
    assert _changes(done) == [
        ("tunnel", "failed", "tunnel is down", False),
        ("pool", "failed", reason, False),
    ]


def test_a_dependency_on_an_undeclared_resource_says_so() -> None:
    done = _run([_resource("pool", "gone")])
    assert done.states["Resource", "pool"].reason == (
        "it depends on resource 'gone', which is not set up (it is not declared)"
    )


def test_an_asset_on_an_undeclared_plugin_says_so_and_serves_nothing() -> None:
    asset = Asset("orders", compute="m:f", io_manager="lake")
    done = _run([], assets=(asset,))
    state = done.states["Asset", "orders"]
    reason = "its IOManager 'lake' is not loaded (it is not declared)"
    assert (state.entry, state.state, state.reason) == (None, "failed", reason)
    assert _changes(done) == [("orders", "failed", reason, False)]
    assert done.assets == [] and done.failed and not done.changed


def test_an_orphaned_asset_is_failed_with_its_reason() -> None:
    lake = Declaration("IOManager", "lake", "journal", {})
    assets = (
        Asset("orders", compute="m:f", io_manager="gone"),
        Asset("totals", compute="m:f", deps=("orders",), io_manager="lake"),
    )
    done = _run([lake], assets=assets)
    reason = "it reads asset 'orders', which is not loaded"
    state = done.states["Asset", "totals"]
    assert (state.entry, state.state, state.reason) == (None, "failed", reason)
    assert _changes(done)[-1] == ("totals", "failed", reason, False)
    assert [c.name for c in done.changes].count("totals") == 1
    assert done.assets == []


def test_an_unhealthy_new_version_records_its_own_facts_and_is_torn_down() -> None:
    old = _Loader().load(_resource("db"), {})
    live = {("Resource", "db"): DeclarationState(_resource("db"), old)}
    done = _run([_resource("db", label="v2")], live=live, health=_Health("db"))
    state = done.states["Resource", "db"]
    assert state.entry is old and state.state == "failed"
    assert state.reason == "new version is unhealthy: sick"
    assert dict(state.facts) == {"distribution": "dist", "version": "1"}
    assert _changes(done) == [("db", "failed", "new version is unhealthy: sick", True)]
    assert done.retired == [] and done.added == [] and not done.changed


def test_a_replaced_version_is_retired_and_reported_with_its_health() -> None:
    old = _Loader().load(_resource("db"), {})
    live = {("Resource", "db"): DeclarationState(_resource("db"), old)}
    done = _run([_resource("db", label="v2"), _resource("new")], live=live, health=_Health("new"))
    assert done.retired == [old] and [e.name for e in done.added] == ["db", "new"]
    assert _changes(done) == [("db", "replaced", None, False), ("new", "added", "sick", False)]
    assert done.changed


def test_a_failed_declaration_is_reloaded_on_retry_and_kept_failed_otherwise() -> None:
    failed = DeclarationState(_resource("db"), None, "failed", "was down")
    live = {("Resource", "db"): failed}
    waiting = _run([_resource("db")], live=live)
    assert waiting.states["Resource", "db"] is failed and waiting.changes == []
    retried = _run([_resource("db")], live=live, retry=True)
    assert _changes(retried) == [("db", "added", None, False)]


def _on_pool(label: str = "v1") -> dict[tuple[str, str], DeclarationState]:
    """Live: a ``pool`` resource and an ``app`` built on it."""
    pool, app = _resource("pool", label=label), _resource("app", "pool")
    return {
        ("Resource", "pool"): DeclarationState(pool, _Loader().load(pool, {})),
        ("Resource", "app"): DeclarationState(app, _Loader().load(app, {})),
    }


def test_a_dependent_failing_on_a_renewed_resource_is_not_kept_on_the_old_one() -> None:
    live = _on_pool()
    old_pool, old_app = live["Resource", "pool"].entry, live["Resource", "app"].entry
    declarations = [_resource("pool", label="v2"), _resource("app", "pool")]
    done = _run(declarations, live=live, loader=_Loader("app"))
    app = done.states["Resource", "app"]
    assert (app.entry, app.state) == (None, "failed")  # its old pool is torn down
    assert old_pool in done.retired and old_app in done.retired
    assert ("app", "failed", "app is down", False) in _changes(done)


def test_an_unhealthy_dependent_of_a_renewed_resource_replaces_the_old_one() -> None:
    live = _on_pool()
    old_app = live["Resource", "app"].entry
    declarations = [_resource("pool", label="v2"), _resource("app", "pool")]
    done = _run(declarations, live=live, health=_Health("app"))
    app = done.states["Resource", "app"]
    assert app.entry is not None and app.entry is not old_app and app.state == "unhealthy"
    assert old_app in done.retired and done.retired.count(old_app) == 1
    assert ("app", "replaced", "sick", False) in _changes(done)


class _SecretLoader(_Loader):
    """A loader whose plugins mark ``config.<name>_pin`` secret."""

    def secret_paths(self, declaration: Declaration) -> frozenset[tuple[str | int, ...]]:
        return frozenset({("config", f"{declaration.name}_pin")})


def test_every_state_carries_the_secret_paths_its_plugin_marks() -> None:
    done = _run([_resource("db"), _resource("down")], loader=_SecretLoader("down"))
    assert done.states["Resource", "db"].secrets == {("config", "db_pin")}
    assert done.states["Resource", "down"].secrets == {("config", "down_pin")}
    old = _run([_resource("db")], loader=_SecretLoader())
    kept = _run(  # a new version comes up unhealthy: the previous one is kept, secrets too
        [_resource("db", label="v2")],
        live=dict(old.states),
        loader=_SecretLoader(),
        health=_Health("db"),
    )
    state = kept.states["Resource", "db"]
    assert (state.state, state.secrets) == ("failed", {("config", "db_pin")})
    assert state.entry is old.states["Resource", "db"].entry


def test_a_declaration_whose_plugin_cannot_be_had_asks_for_no_secret_paths() -> None:
    class Strict(_SecretLoader):
        def secret_paths(self, declaration: Declaration) -> frozenset[tuple[str | int, ...]]:
            assert declaration.name != "ghost", "asked the schema of a plugin it cannot read"
            return super().secret_paths(declaration)

    ghost = _resource("ghost")
    desired = ManifestSet(
        {("Resource", "db"): _resource("db")},
        {},
        unloadable={("Resource", "ghost"): (ghost, "no such plugin")},
    )
    transaction = Transaction(Strict("ghost"), {}, desired, _Health(), retry=False)  # type: ignore[arg-type]
    transaction.run()
    assert transaction.states["Resource", "db"].secrets == {("config", "db_pin")}


def test_changes_keep_the_declarations_order_whatever_settles_first() -> None:
    # 'a' loads and waits for its health check; 'b' fails at once: 'a' is still listed first.
    done = _run([_resource("a"), _resource("b"), _resource("c")], loader=_Loader("b"))
    assert [(c.name, c.action) for c in done.changes] == [
        ("a", "added"),
        ("b", "failed"),
        ("c", "added"),
    ]


def test_a_declaration_waiting_for_its_health_check_shows_as_being_checked() -> None:
    seen: dict[str, DeclarationState] = {}

    class Watching(_Health):
        def check(self, entry: Entry) -> Health:
            if entry.name == "a":  # 'b' has loaded too, and waits for its own check
                seen["b"] = transaction.states["Resource", "b"]
            return super().check(entry)

    b = _resource("b")
    desired = ManifestSet({("Resource", "a"): _resource("a"), ("Resource", "b"): b}, {})
    transaction = Transaction(_Loader(), {}, desired, Watching(), retry=False)  # type: ignore[arg-type]
    transaction.run()
    waiting = seen["b"]
    assert (waiting.model, waiting.entry) == (b, None)
    assert (waiting.state, waiting.reason) == ("failed", "being checked")
    assert transaction.states["Resource", "b"].state == "active"
