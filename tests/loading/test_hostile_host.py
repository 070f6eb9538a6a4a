"""Issue 4's headline: the real Host loads a folder naming every hostile plugin plus a good one.

The good plugin ends up working, each bad one is reported with a precise reason within the
configured timeouts, and the test process (the host) is unharmed: running, the same
rlimits, no hostile import-time code in ``sys.modules``, no child left behind.

Import-time failures are caught by the import probe while the manifests are validated
(layer (c) reads each plugin class through the loader); like the failures at load time,
each fails its own declaration, with the reason, and the rest of its file loads.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loader_helpers import (
    descendants,
    forget_hostile_modules,
    import_hostile_loaded,
    write_declaration,
    write_host_config,
)
from sandbox_helpers import requires_hostile, wait_until

from flowstone_host import FlowStoneError
from flowstone_host.host.lifecycle import Host
from flowstone_host.host.report import ReloadReport
from flowstone_host.manifest.model import Declaration

pytestmark = [pytest.mark.integration, requires_hostile]

IMPORT_TIMEOUT_S = 3.0
MEMORY_MB = 512

#: Declarations whose plugin breaks at import, and what their rejection must say.
IMPORT_FAILURES = {
    "import-raises": (
        "RuntimeError: flowstone_hostile.import_raises is broken at import on purpose"
    ),
    "import-exits": "exited with code 3 while importing",
    "import-segfaults": "killed by SIGSEGV while importing",
    "import-hangs": f"still importing after {IMPORT_TIMEOUT_S:g} s; killed",
    "import-eats-memory": f"memory limit {MEMORY_MB} MiB",
}

#: Declarations whose plugin imports but fails to load, and what their failure must say.
LOAD_FAILURES = {
    "constructor-raises": (
        "its constructor raised ValueError: flowstone_hostile: this constructor always fails"
    ),
    "contract-2": "implements IOManager contract 2.0.0; this host runs IOManager >=1.0.0,<2.0.0",
    "wrong-base": "flowstone_hostile.classes:WrongBase is a WrongBase, not a subclass of IOManager",
}
LOAD_CODES = {
    "constructor-raises": "plugin_load_error",
    "contract-2": "incompatible_contract",
    "wrong-base": "plugin_load_error",
}

RLIMITS = (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NOFILE)


@dataclass
class Started:
    host: Host
    report: ReloadReport
    took_s: float
    plugins_dir: Path
    children_before: set[int]
    rlimits_before: list[tuple[int, int]]


@pytest.fixture(autouse=True)
def _host_never_imports_hostile_code() -> Iterator[None]:
    """Replaces the package-wide guard: here the hostile ``classes`` module loads by design
    (good, constructor-raises, contract 2, wrong base run in process); the import-time
    hostile modules still must never reach this process."""
    yield
    assert import_hostile_loaded() == []


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    root = tmp_path_factory.mktemp("hostile-host")
    plugins = root / "plugins.d"
    for name in [*IMPORT_FAILURES, *LOAD_FAILURES, "good"]:
        write_declaration(plugins, name, f"hostile-{name}")
    config = write_host_config(
        root / "config", plugins, import_timeout_s=IMPORT_TIMEOUT_S, memory_mb=MEMORY_MB
    )
    children_before = descendants()
    rlimits_before = [resource.getrlimit(limit) for limit in RLIMITS]
    host = Host.from_config(config)
    clock = time.monotonic()
    report = host.start()
    took_s = time.monotonic() - clock
    try:
        yield Started(host, report, took_s, plugins, children_before, rlimits_before)
    finally:
        host.stop(grace_s=1)
        forget_hostile_modules()


def _declaration(started: Started, name: str) -> dict[str, Any]:
    [state] = [d for d in started.host.status()["declarations"] if d["name"] == name]
    return state


def test_the_good_plugin_works(started: Started) -> None:
    entry = started.host.snapshot().io_managers.resolve("good")
    entry.instance.store("orders", {"n": 1}, "2024-01-01")
    assert entry.instance.load("orders", "2024-01-01") == {"n": 1}
    assert entry.metadata["distribution"] == "flowstone-hostile"
    assert entry.metadata["compatibility"] == "compatible"
    [good] = [d for d in started.host.status()["declarations"] if d["name"] == "good"]
    assert (good["state"], good["reason"]) == ("active", None)


def test_only_the_good_plugin_is_in_the_snapshot(started: Started) -> None:
    assert started.host.snapshot().io_managers.names() == ["good"]
    assert started.report.outcome == "partial"


@pytest.mark.parametrize("name", sorted(IMPORT_FAILURES))
def test_a_plugin_failing_at_import_is_rejected_with_what_happened(
    started: Started, name: str
) -> None:
    state = _declaration(started, name)
    assert state["state"] == "failed" and state["distribution"] == "flowstone-hostile"
    assert IMPORT_FAILURES[name] in state["reason"]
    assert "It was not imported into the host" in state["reason"]
    [change] = [c for c in started.report.changes if c.name == name]
    assert (change.action, change.reason) == ("failed", state["reason"])
    assert started.report.rejected_files == {}
    assert name not in started.host.snapshot().io_managers


def test_the_unbounded_allocation_names_the_memory_limit(started: Started) -> None:
    reason = _declaration(started, "import-eats-memory")["reason"]
    assert "MemoryError" in reason or "out of memory" in reason


@pytest.mark.parametrize("name", sorted(LOAD_FAILURES))
def test_a_plugin_failing_to_load_fails_its_declaration_with_the_reason(
    started: Started, name: str
) -> None:
    state = _declaration(started, name)
    assert state["state"] == "failed"
    assert LOAD_FAILURES[name] in state["reason"]
    [change] = [c for c in started.report.changes if c.name == name]
    assert (change.action, change.kept) == ("failed", False)
    assert change.reason == state["reason"]


def test_the_loader_raises_the_precise_error_class_for_each(started: Started) -> None:
    """The status carries the message; the loader's error class and context are checked here."""
    names = {d["name"] for d in started.host.status()["declarations"]}
    assert names == {*IMPORT_FAILURES, *LOAD_FAILURES, "good"}
    for name, code in LOAD_CODES.items():
        with pytest.raises(FlowStoneError) as caught:
            started.host.loader.load(Declaration("IOManager", name, f"hostile-{name}", {}))
        assert caught.value.code == code
        assert caught.value.context["distribution"] == "flowstone-hostile"
        assert caught.value.context["version"] == "1.0.0"
        assert caught.value.context["name"] == name


def test_it_all_happened_within_the_configured_timeouts(started: Started) -> None:
    # One probe waits out the import timeout; every other one is a quick child.
    assert started.took_s < IMPORT_TIMEOUT_S + 12
    assert started.report.duration_s <= started.took_s


def test_the_host_process_is_unharmed(started: Started) -> None:
    assert started.host.alive()
    assert [resource.getrlimit(limit) for limit in RLIMITS] == started.rlimits_before
    assert wait_until(lambda: descendants() <= started.children_before, timeout_s=5)
    assert "flowstone_hostile.import_exits" not in sys.modules


def test_a_rescan_uses_the_cached_verdicts_and_changes_nothing(started: Started) -> None:
    good = started.host.snapshot().io_managers.resolve("good").instance
    good.store("kept", 1, None)
    (started.plugins_dir / "good.yaml").touch()  # an event, but no content change
    clock = time.monotonic()
    report = started.host.reload("rescan")
    assert time.monotonic() - clock < IMPORT_TIMEOUT_S  # the hanging import is not waited again
    assert report.outcome == "unchanged"
    assert started.host.snapshot().io_managers.resolve("good").instance is good
    assert good.load("kept", None) == 1


def test_a_manual_reload_retries_the_failures_and_keeps_what_works(started: Started) -> None:
    good = started.host.snapshot().io_managers.resolve("good").instance
    report = started.host.reload("manual")
    failed = {c.name for c in report.changes if c.action == "failed"}
    assert failed == {*IMPORT_FAILURES, *LOAD_FAILURES}
    assert report.outcome == "partial"
    assert started.host.snapshot().io_managers.resolve("good").instance is good
    assert wait_until(lambda: descendants() <= started.children_before, timeout_s=5)
