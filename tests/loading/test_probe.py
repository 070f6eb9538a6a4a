"""The import probe against plugins that fail at import in every way, in real children."""

from __future__ import annotations

import time

import pytest
from sandbox_helpers import requires_hostile

from flowstone_host import PluginLoadError
from flowstone_host.loading.limits import Limits
from flowstone_host.loading.probe import ProbeCache, probe_import
from flowstone_host.telemetry import capture

pytestmark = [pytest.mark.integration, requires_hostile]

LIMITS = Limits(memory_mb=512, cpu_s=20, open_files=128)
TIMEOUT_S = 5.0


def probe(target: str | tuple[str, str], **kwargs: object) -> object:
    options = {"timeout_s": TIMEOUT_S, "limits": LIMITS, **kwargs}
    started = time.monotonic()
    result = probe_import(target, **options)  # type: ignore[arg-type]
    assert time.monotonic() - started < options["timeout_s"] + 3  # type: ignore[operator]
    return result


def test_a_good_plugin_imports_and_reports_what_it_declares() -> None:
    result = probe("flowstone_hostile.classes:GoodIOManager")
    assert result.ok and result.outcome == "ok"
    assert result.loaded == "flowstone_hostile.classes:GoodIOManager"
    assert result.declared["contract_version"] == "1.0.0"


def test_an_entry_point_is_probed_by_namespace_and_name() -> None:
    result = probe(("flowstone.io_managers", "hostile-good"))
    assert result.ok and result.target == "flowstone.io_managers/hostile-good"


def test_a_missing_entry_point_is_not_found() -> None:
    result = probe(("flowstone.io_managers", "no-such-plugin"))
    assert result.outcome == "not_found"
    assert "no-such-plugin" in result.reason


def test_an_exception_at_import_is_reported_with_its_type_and_message() -> None:
    result = probe("flowstone_hostile.import_raises:Plugin")
    assert result.outcome == "import_error"
    assert result.error_type == "RuntimeError"
    assert result.error_message == "flowstone_hostile.import_raises is broken at import on purpose"


def test_sys_exit_at_import_is_reported_with_its_exit_code() -> None:
    result = probe("flowstone_hostile.import_exits:Plugin")
    assert (result.outcome, result.exit_code, result.signal) == ("exited", 3, None)
    assert "exited with code 3" in result.reason


def test_a_segfault_at_import_names_the_signal_and_the_line() -> None:
    result = probe("flowstone_hostile.import_segfaults:Plugin")
    assert (result.outcome, result.signal) == ("signal", "SIGSEGV")
    assert any("import_segfaults.py" in line for line in result.output_tail)


def test_an_import_that_never_ends_is_killed_at_the_timeout() -> None:
    started = time.monotonic()
    result = probe("flowstone_hostile.import_hangs:Plugin", timeout_s=1.0)
    assert result.outcome == "timeout"
    assert 1.0 <= time.monotonic() - started < 3.0


def test_an_import_that_burns_cpu_hits_the_cpu_limit() -> None:
    result = probe("flowstone_hostile.import_hangs:Plugin", limits=Limits(cpu_s=1))
    assert (result.outcome, result.signal) == ("cpu_limit", "SIGXCPU")


def test_an_import_that_allocates_without_bound_hits_the_memory_limit() -> None:
    result = probe("flowstone_hostile.import_eats_memory:Plugin", limits=Limits(memory_mb=256))
    assert result.outcome == "memory_limit"
    assert "256 MiB" in result.reason


def test_a_failed_probe_becomes_a_load_error_naming_the_target() -> None:
    error = probe("flowstone_hostile.import_exits:Plugin").to_error(plugin="exits")
    assert isinstance(error, PluginLoadError)
    assert error.code == "plugin_load_error"
    assert error.details["probe"] == "exited" and error.details["exit_code"] == 3
    assert error.plugin == "exits"
    assert "flowstone_hostile.import_exits:Plugin" in str(error)


def test_verdicts_are_cached_per_distribution_version_and_target() -> None:
    cache = ProbeCache()
    target = "flowstone_hostile.import_raises:Plugin"
    first = probe(target, distribution=("flowstone-hostile", "1.0.0"), cache=cache)
    again = probe(target, distribution=("flowstone-hostile", "1.0.0"), cache=cache)
    upgraded = probe(target, distribution=("flowstone-hostile", "1.0.1"), cache=cache)
    assert again is first
    assert upgraded is not first and upgraded.outcome == first.outcome
    cache.forget("flowstone-hostile")
    assert cache.get("flowstone-hostile", "1.0.0", target) is None


def test_each_probe_emits_a_telemetry_event() -> None:
    with capture(("flowstone", "plugin", "probe")) as events:
        probe("flowstone_hostile.import_exits:Plugin")
    [(_, measurements, metadata)] = events
    assert metadata["outcome"] == "exited" and measurements["duration"] > 0
