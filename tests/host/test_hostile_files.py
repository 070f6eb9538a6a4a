"""Hostile manifest files: what a reload reads must never block it or blow it up."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from host_tree import Tree

from flowstone_host.host import manifest_tree
from flowstone_host.host.lifecycle import Host


def test_a_fifo_swapped_in_after_the_listing_never_hangs_a_reload(
    tree: Tree, make_host: Callable[[], Host], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tree.write("a.yaml", tree.io("store"))
    host = make_host()
    host.start()
    listing = manifest_tree.manifest_files

    def list_then_swap(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
        found = listing(paths)  # listed as a regular file, then swapped for a FIFO
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        os.replace(fifo, path)
        return found

    monkeypatch.setattr(manifest_tree, "manifest_files", list_then_swap)
    reports: list[object] = []
    thread = threading.Thread(target=lambda: reports.append(host.reload("manual")), daemon=True)
    thread.start()
    thread.join(5)
    assert reports, "the reload hung opening the FIFO"
    [issue] = host.last_reload.rejected_files[str(path)]  # type: ignore[union-attr]
    assert issue.code == "io.unreadable"
    assert host.snapshot().io_managers.names() == ["store"]  # the last good version stays
