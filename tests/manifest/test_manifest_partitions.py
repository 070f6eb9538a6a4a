"""validate refuses, at file:line:col, what the asset runtime could not honour."""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_helpers import GOOD

from flowstone_host.loading.catalog import installed
from flowstone_host.manifest.validate import validate_paths
from flowstone_host.partition_defs import Dimensions, StaticPartitions, TimeWindows

F = "flowstone_host.examples.demo_assets:"


def _doc(name: str, spec: str) -> str:
    return f"apiVersion: flowstone/v1\nkind: Asset\nmetadata: {{name: {name}}}\nspec:\n{spec}"


def _validate(tmp_path: Path, *docs: str) -> list[tuple[int, int, str, str]]:
    path = tmp_path / "m.yaml"
    path.write_text("\n---\n".join(docs))
    report = validate_paths([path], environ={}, catalog=installed())
    return [(i.position.line, i.position.column, i.code, i.message) for i in report.issues]


PLAIN = f"  compute: {F}orders\n"


@pytest.mark.parametrize(
    ("partitions", "where", "code", "fragment"),
    [
        ('{daily: {start: "2024-02-30"}}', (6, 31), "ref.bad_partitions", "not a date"),
        (
            '{hourly: {start: "2024-03-10T02:00", timezone: America/New_York}}',
            (6, 32),
            "ref.bad_partitions",
            "does not exist in America/New_York",
        ),
        (
            '{daily: {start: "2024-01-01", timezone: Mars/Base}}',
            (6, 55),
            "ref.bad_partitions",
            "Unknown timezone 'Mars/Base'",
        ),
        ("[a, b, a]", (6, 15), "shape.range", "without repeated items"),
        ('{daily: {start: "2024-01-01", every: 2}}', (6, 45), "shape.unknown_key", "'every'"),
        ('{region: {weekly: {start: "2024-01-01"}}}', (6, 25), "shape.unknown_key", "'weekly'"),
        ('{daily: {end: "2024-01-01"}}', (6, 16), "shape.missing_key", "'start'"),
        ("{daily: {start: 2024-01-01}}", (6, 31), "shape.quote_string", "quote it"),
    ],
)
def test_bad_partition_definitions_are_refused_at_their_field(
    tmp_path: Path, partitions: str, where: tuple[int, int], code: str, fragment: str
) -> None:
    (issue,) = _validate(tmp_path, _doc("x", PLAIN + f"  partitions: {partitions}\n"))
    assert issue[:3] == (*where, code), issue
    assert fragment in issue[3]


DAILY_2024 = '  partitions: {daily: {start: "2024-01-01", end: "2024-12-31"}}\n'


@pytest.mark.parametrize(
    ("dep", "mine", "fragment"),
    [
        # an unpartitioned asset reads every partition of its dependency at once
        ('  partitions: {daily: {start: "2024-01-01"}}\n', "", "a set that grows"),
        (
            '  partitions: {hourly: {start: "2020-01-01T00:00", end: "2024-01-01T00:00"}}\n',
            "",
            "at most 10000",
        ),
        # a partitioned asset reads the same partition of its dependency
        (DAILY_2024, '  partitions: {daily: {start: "2024-06-01"}}\n', "does not have every"),
        (DAILY_2024, "  partitions: [a, b]\n", "does not have every"),
        ("  partitions: [a, b]\n", "  partitions: [a, c]\n", "does not have every"),
        (
            DAILY_2024,
            '  partitions: {region: [eu], day: {daily: {start: "2024-01-01"}}}\n',
            "does not have every",
        ),
    ],
)
def test_deps_the_runtime_cannot_map_are_refused(
    tmp_path: Path, dep: str, mine: str, fragment: str
) -> None:
    issues = _validate(
        tmp_path, _doc("up", PLAIN + dep), _doc("down", PLAIN + mine + "  deps: [up]\n")
    )
    assert [i[2] for i in issues] == ["ref.partition_mapping"], issues
    line, column, _, message = issues[0]
    assert fragment in message
    assert (line, column) == (14 + mine.count("\n"), 10)  # at the dependency's name


@pytest.mark.parametrize(
    ("dep", "mine"),
    [
        (DAILY_2024, '  partitions: {daily: {start: "2024-03-01", end: "2024-03-31"}}\n'),
        ('  partitions: {daily: {start: "2024-01-01"}}\n', DAILY_2024),
        ("  partitions: [a, b, c]\n", "  partitions: [c, a]\n"),
        ("  partitions: [a, b]\n", ""),
        ("", DAILY_2024),
        (
            "  partitions: {region: [eu, us], day: {daily: {start: '2024-01-01'}}}\n",
            "  partitions:\n    day: {daily: {start: '2024-02-01', end: '2024-02-02'}}\n"
            "    region: [us]\n",
        ),
    ],
)
def test_deps_the_runtime_can_map_are_accepted(tmp_path: Path, dep: str, mine: str) -> None:
    assert (
        _validate(tmp_path, _doc("up", PLAIN + dep), _doc("down", PLAIN + mine + "  deps: [up]\n"))
        == []
    )


ROUTER = f"  routing:\n    router: {F}pick_report\n    routes: {{a: ROUTE}}\n"


@pytest.mark.parametrize(
    ("route", "router_parts", "route_spec", "fragment"),
    [
        ("r", "", "", "names 'r' itself"),
        ("t", "", PLAIN + "  deps: [mid]\n", "(t -> mid -> r)"),
        ("t", "", PLAIN + "  partitions: [x, y]\n", "but 'r' is not partitioned"),
        ("t", "  partitions: [x, z]\n", PLAIN + "  partitions: [x, y]\n", "but 'r' is the list"),
    ],
)
def test_routes_the_router_cannot_reach_are_refused(
    tmp_path: Path, route: str, router_parts: str, route_spec: str, fragment: str
) -> None:
    docs = [_doc("r", router_parts + ROUTER.replace("ROUTE", route))]
    docs.append(_doc("mid", PLAIN + "  deps: [r]\n"))
    if route != "r":
        docs.append(_doc(route, route_spec))
    issues = _validate(tmp_path, *docs)
    assert [i[2] for i in issues] == ["ref.route_unreachable"], issues
    assert issues[0][:2] == (7 + router_parts.count("\n"), 17)  # at the route
    assert fragment in issues[0][3]


@pytest.mark.parametrize(
    "shape",
    [
        f"  scatter: {{reader: custom, item: '{F}enrich'}}\n",
        f"  parallel: {{branches: {{a: {{compute: '{F}orders'}}}}, join: '{F}join_stats'}}\n",
        f"  routing: {{router: '{F}pick_report', routes: {{a: other}}}}\n",
    ],
)
def test_compute_beside_scatter_parallel_or_routing_is_refused(tmp_path: Path, shape: str) -> None:
    issues = _validate(tmp_path, _doc("x", PLAIN + shape), _doc("other", PLAIN))
    assert [(i[0], i[1], i[2]) for i in issues] == [
        (6, 3, "shape.conflict")
    ]  # at the scatter, parallel or routing key
    assert "the runtime would ignore compute" in issues[0][3]


def test_the_model_holds_lazy_definitions() -> None:
    report = validate_paths([GOOD / "partitions.yaml"], environ={}, catalog=installed())
    assert report.ok, report.to_text()
    assets = report.manifests.assets
    assert isinstance(assets["regions"].partitions, StaticPartitions)
    hours = assets["hours"].partitions
    assert isinstance(hours, TimeWindows) and hours.count() == 366 * 24
    region_days = assets["region_days"].partitions
    assert isinstance(region_days, Dimensions) and region_days.count() == 2 * 366
    daily_named = assets["daily_named"].partitions
    assert isinstance(daily_named, Dimensions) and daily_named.names == ("daily",)
    assert assets["march_total"].partitions is None
