"""The asset graph: edges from deps and routes, a reproducible order, cycles named."""

from __future__ import annotations

import pytest

from flowstone_host import NotFound, ValidationError
from flowstone_host.graph import AssetGraph
from flowstone_host.manifest.model import Asset, Routing, freeze


def _asset(name: str, *deps: str, routes: dict[str, str] | None = None) -> Asset:
    routing = Routing("m:pick", freeze(routes)) if routes else None
    return Asset(name, compute=None if routes else "m:f", deps=deps, routing=routing)


def test_order_puts_every_asset_after_what_it_reads_ties_by_name() -> None:
    graph = AssetGraph([_asset("c", "a"), _asset("b"), _asset("a"), _asset("d", "c", "b")])
    assert graph.order == ("a", "b", "c", "d")
    assert graph.upstream("d") == ("c", "b") and graph.downstream("a") == ("c",)


def test_routes_are_edges_and_plan_takes_only_what_targets_read() -> None:
    graph = AssetGraph(
        [
            _asset("stats"),
            _asset("low", "stats"),
            _asset("high", "stats"),
            _asset("report", "stats", routes={"l": "low", "h": "high"}),
            _asset("unrelated"),
        ]
    )
    assert graph.upstream("report") == ("stats", "low", "high")
    assert graph.plan(["report"]) == ("stats", "high", "low", "report")
    assert graph.plan(["low"]) == ("stats", "low")


def test_a_cycle_is_refused_with_its_path_named() -> None:
    with pytest.raises(ValidationError, match=r"cycle: a -> b -> c -> a"):
        AssetGraph([_asset("a", "b"), _asset("b", "c"), _asset("c", "a"), _asset("d")])


def test_a_self_loop_and_an_unknown_edge_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"cycle: a -> a"):
        AssetGraph([_asset("a", "a")])
    with pytest.raises(ValidationError, match="'a' reads 'ghost', which is not an asset"):
        AssetGraph([_asset("a", "ghost")])


def test_unknown_names_suggest_the_nearest() -> None:
    graph = AssetGraph([_asset("orders")])
    with pytest.raises(NotFound, match="Did you mean 'orders'"):
        graph.plan(["ordrs"])
    assert graph.get("x") is None and "orders" in graph and len(graph) == 1


def test_graphs_compare_by_their_assets() -> None:
    assert AssetGraph([_asset("a")]) == AssetGraph([_asset("a")])
    assert AssetGraph([_asset("a")]) != AssetGraph([_asset("a", "b"), _asset("b")])
