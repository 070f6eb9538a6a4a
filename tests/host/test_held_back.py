"""A held-back change points at the change (issue 14, item 12), and a rejected file's
errors are logged once each.

Before: every ``reload.held_back`` issue was placed at ``file:1:1`` with an empty field path,
whatever the change was; and a ``${VAR}`` that could not be substituted was logged twice.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from host_tree import Tree, asset_doc, header

from flowstone_host.manifest.issues import Position


def _held_back(report: Any, path: Any) -> Any:
    [issue] = report.rejected_files[str(path)]
    assert issue.code == "reload.held_back"
    return issue


def test_a_rename_points_at_the_new_name(tree: Tree, make_host: Any) -> None:
    tree.write("a.yaml", tree.resource("db"), tree.io("lake"))
    tree.write("b.yaml", asset_doc("orders", io_manager="lake"))
    host = make_host()
    host.start()
    path = tree.write("a.yaml", tree.resource("db"), tree.io("pond"))

    report = host.reload("watch")

    issue = _held_back(report, path)
    assert issue.position == Position(str(path), 8, 18) and issue.path == ("metadata", "name")
    assert issue.message.startswith("Held back: with this file's change, which removes IOManager")
    assert f"{tree.plugins / 'b.yaml'}:4:" in issue.message and "'lake'" in issue.message
    assert host.snapshot().io_managers.names() == ["lake"]
    # b.yaml did not change and serves as it was: its error is quoted above, not repeated
    assert set(report.rejected_files) == {str(path)}


def test_a_changed_field_is_pointed_at(tree: Tree, make_host: Any) -> None:
    def events(partitions: str) -> str:
        return header("Asset", "events") + (
            "spec:\n  compute: 'flowstone_host.examples.demo_assets:orders'\n"
            f"  partitions: {partitions}\n"
        )

    report = header("Asset", "report") + (
        "spec:\n  compute: 'flowstone_host.examples.demo_assets:orders'\n"
        "  partitions: [eu, us]\n  deps: [events]\n"
    )
    tree.write("a.yaml", events("[eu, us]"))
    tree.write("b.yaml", report)
    host = make_host()
    host.start()
    path = tree.write("a.yaml", events("[eu]"))  # report reads partition 'us' of events

    issue = _held_back(host.reload("watch"), path)

    assert issue.position == Position(str(path), 6, 15) and issue.path == ("spec", "partitions")
    assert issue.message.startswith("Held back: with this file's change to Asset 'events'")
    assert "report" in host.snapshot().assets


def test_a_deleted_file_points_at_the_declaration_another_one_needs(
    tree: Tree, make_host: Any
) -> None:
    gone = tree.write("a.yaml", tree.resource("db"), tree.io("warehouse"))
    tree.write("b.yaml", asset_doc("orders", io_manager="warehouse"))
    host = make_host()
    host.start()
    gone.unlink()

    issue = _held_back(host.reload("watch"), gone)

    assert issue.position == Position(str(gone), 8, 18) and issue.path == ("metadata", "name")
    assert issue.message.startswith(
        "Held back: with deleting this file, which declared IOManager 'warehouse' here"
    )
    assert host.snapshot().io_managers.names() == ["warehouse"]


def test_a_rejected_file_logs_each_error_once(
    tree: Tree, make_host: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWSTONE_UNSET_14", raising=False)
    path = tree.write("a.yaml", tree.io("lake"))
    host = make_host()
    host.start()
    bad = header("IOManager", "lake") + (
        f"spec:\n  plugin: journal\n  config:\n    journal: {tree.journal}\n"
        "    label: lake\n    fail_setup: ${FLOWSTONE_UNSET_14}\n"
    )
    tree.write("a.yaml", bad)

    with caplog.at_level(logging.WARNING):
        report = host.reload("watch")

    [issue] = report.rejected_files[str(path)]
    assert issue.code == "env.missing" and issue.path == ("spec", "config", "fail_setup")
    logged = [r.getMessage() for r in caplog.records if f"{path}:" in r.getMessage()]
    assert logged == [f"{issue.to_text()} (the file keeps its last good version)"]
