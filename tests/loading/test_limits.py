"""Limits applied in a child process: what the child reads back with getrlimit."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from flowstone_host.loading.limits import Limits

MIB = 1024 * 1024
CHILD = """
import json, resource, sys
from flowstone_host.loading.limits import Limits
before = json.loads(sys.argv[2])  # limits to set first, as a parent or container might
for name, pair in before.items():
    resource.setrlimit(getattr(resource, name), tuple(pair))
Limits.from_wire(json.loads(sys.argv[1])).apply()
names = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE")
print(json.dumps({n: resource.getrlimit(getattr(resource, n)) for n in names}))
"""


def in_child(
    limits: Limits, before: dict[str, tuple[int, int]] | None = None
) -> dict[str, list[int]]:
    """Apply ``limits`` in a fresh interpreter; return the rlimits it then has."""
    wire = json.dumps(limits.to_wire())
    done = subprocess.run(
        [sys.executable, "-c", CHILD, wire, json.dumps(before or {})],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: dict[str, list[int]] = json.loads(done.stdout)
    return result


def test_each_limit_is_set_in_the_child() -> None:
    got = in_child(Limits(memory_mb=2048, cpu_s=30, open_files=64))
    assert got["RLIMIT_AS"] == [2048 * MIB, 2048 * MIB]
    assert got["RLIMIT_CPU"] == [30, 31]  # SIGXCPU at 30 s, SIGKILL a second later
    assert got["RLIMIT_NOFILE"] == [64, 64]


def test_none_leaves_a_limit_as_the_parent_has_it() -> None:
    got = in_child(Limits(open_files=64))
    assert tuple(got["RLIMIT_AS"]) == resource.getrlimit(resource.RLIMIT_AS)
    assert tuple(got["RLIMIT_CPU"]) == resource.getrlimit(resource.RLIMIT_CPU)
    assert got["RLIMIT_NOFILE"] == [64, 64]


def test_a_limit_above_the_hard_limit_already_set_is_capped_at_it() -> None:
    got = in_child(
        Limits(open_files=512, cpu_s=30),
        before={"RLIMIT_NOFILE": (100, 100), "RLIMIT_CPU": (30, 30)},
    )
    assert got["RLIMIT_NOFILE"] == [100, 100]  # raising a hard limit is not allowed
    assert got["RLIMIT_CPU"] == [30, 30]  # no second of grace beyond the hard limit


def test_the_host_process_is_never_limited() -> None:
    before = [resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_NOFILE)]
    in_child(Limits(memory_mb=1024, open_files=32))
    after = [resource.getrlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_NOFILE)]
    assert after == before


@pytest.mark.parametrize(
    "limits", [Limits(), Limits(memory_mb=1, cpu_s=2, open_files=3), Limits(cpu_s=5)]
)
def test_limits_cross_the_wire_unchanged(limits: Limits) -> None:
    assert Limits.from_wire(json.loads(json.dumps(limits.to_wire()))) == limits
