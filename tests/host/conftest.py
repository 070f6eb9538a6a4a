"""Fixtures of the host tests: a temporary tree and hosts on it, stopped after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from host_tree import Tree

from flowstone_host.host.lifecycle import Host
from flowstone_host.manifest.host_config import read_host_config


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@pytest.fixture
def make_host(tree: Tree) -> Iterator[Callable[[], Host]]:
    hosts: list[Host] = []

    def make() -> Host:
        host = Host(read_host_config(tree.config))
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.stop(grace_s=0)
