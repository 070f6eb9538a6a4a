"""Plugins in supervised child processes: round trips, crashes, timeouts, environment, stop."""

from __future__ import annotations

import datetime as dt
import decimal
import inspect
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from sandbox_helpers import pid_alive, requires_hostile, wait_until

from flowstone_host import (
    Batch,
    Health,
    IncompatibleContract,
    IOManager,
    ItemReader,
    NotFound,
    NotSupported,
    PermissionDenied,
    PluginCrashed,
    PluginLoadError,
    Timeout,
    Unavailable,
    ValidationError,
)
from flowstone_host.loading.isolation import (
    IsolationOptions,
    RemoteHandle,
    RestartPolicy,
    spawn_plugin,
)
from flowstone_host.loading.isolation.process import BASE_ENVIRONMENT
from flowstone_host.plugins.memory_io import MemoryIOManager
from flowstone_host.telemetry import capture
from flowstone_host.testing import IOManagerContract
from flowstone_host.testing.values import VALUE_TYPES, checked_config

pytestmark = [pytest.mark.integration, requires_hostile]

MEMORY_IO = "flowstone_host.plugins.memory_io:MemoryIOManager"
FAST = IsolationOptions(
    timeout_s=5.0, stop_grace_s=1.0, restart=RestartPolicy(initial_backoff_s=0.05)
)


def hostile(name: str) -> tuple[str, str]:
    return ("flowstone.io_managers", f"hostile-{name}")


@pytest.fixture
def spawn() -> Iterator[Any]:
    """spawn_plugin, closing every proxy it made when the test ends."""
    proxies: list[Any] = []

    def make(target: Any, options: IsolationOptions = FAST, **kwargs: Any) -> Any:
        proxy = spawn_plugin(kwargs.pop("kind", "IOManager"), target, options=options, **kwargs)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture(scope="module")
def memory_io() -> Iterator[Any]:
    proxy = spawn_plugin("IOManager", MEMORY_IO, name="memory", options=FAST)
    yield proxy
    proxy.close()


# -- the proxy is the contract ------------------------------------------------------------


def test_the_proxy_is_an_instance_of_the_contract_with_its_signatures(memory_io: Any) -> None:
    assert isinstance(memory_io, IOManager)
    assert inspect.signature(type(memory_io).load) == inspect.signature(IOManager.load)
    assert type(memory_io).contract_version == "1.0.0"
    assert memory_io.health_check() is None  # the memory manager does not check itself


def test_values_round_trip_with_their_types(memory_io: Any) -> None:
    value = {
        "rows": [1, 2.5, None, True],
        "when": dt.date(2024, 1, 2),
        "key": ("a", 1),
        "b": b"\0",
        "price": decimal.Decimal("19.99"),  # the child imports decimal only to decode it
    }
    partition = ("eu", dt.date(2024, 1, 2))
    memory_io.store("orders", value, partition)
    assert memory_io.exists("orders", partition)
    assert memory_io.load("orders", partition) == value
    assert memory_io.list_partitions("orders") == [partition]
    memory_io.delete("orders", partition)
    assert not memory_io.exists("orders", partition)


def test_one_megabyte_payloads_round_trip(memory_io: Any) -> None:
    payload = os.urandom(1 << 20)
    memory_io.store("blob", payload, None)
    assert memory_io.load("blob", None) == payload


def test_plugin_errors_come_back_with_code_and_retryable(memory_io: Any) -> None:
    with pytest.raises(NotFound) as caught:
        memory_io.load("never-stored", None)
    assert caught.value.code == "not_found" and caught.value.retryable is False
    assert caught.value.plugin == "memory" and caught.value.asset == "never-stored"


def test_values_that_cannot_cross_are_refused_before_sending(memory_io: Any) -> None:
    with pytest.raises(ValidationError, match="cannot cross the process boundary"):
        memory_io.store("fn", lambda: None, None)
    assert memory_io.isolation.state == "running"


def test_frames_over_the_cap_are_refused_and_the_child_lives_on(spawn: Any) -> None:
    proxy = spawn(MEMORY_IO, IsolationOptions(max_frame=4096))
    with pytest.raises(ValidationError, match="over the plugin channel's cap"):
        proxy.store("big", b"x" * 8192, None)
    proxy.store("small", b"x" * 100, None)
    assert proxy.load("small", None) == b"x" * 100


def test_arrow_tables_cross_as_arrow_ipc(memory_io: Any) -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow (flowstone-host[parquet]) not installed")
    table = pa.table({"id": [1, 2, 3], "name": ["a", "b", None]})
    memory_io.store("table", table, None)
    loaded = memory_io.load("table", None)
    assert isinstance(loaded, pa.Table) and loaded.equals(table)


class TestIsolatedMemoryIOManager(IOManagerContract):
    """The conformance kit cannot tell an isolated memory IO manager from the real one."""

    @pytest.fixture
    def io_manager(self, memory_io: Any) -> Any:
        return memory_io

    @pytest.fixture
    def io_value_types(self) -> frozenset[str]:
        # The wire is msgpack: ints beyond 64 bits are refused (a ValidationError), not sent.
        return frozenset(VALUE_TYPES) - {"big_int"}

    @pytest.fixture
    def io_config(self) -> dict[str, Any]:
        return {"copy": True}

    @pytest.fixture
    def io_build(self) -> Callable[[Mapping[str, Any]], Any]:
        # as the host does for an isolated declaration: check the config, then spawn
        def build(config: Mapping[str, Any]) -> Any:
            checked = checked_config(MemoryIOManager, config)
            return spawn_plugin("IOManager", MEMORY_IO, checked, name="memory", options=FAST)

        return build


# -- load failures are reported like in-process ones ------------------------------------


@pytest.mark.parametrize(
    ("name", "error", "text"),
    [
        ("constructor-raises", PluginLoadError, "this constructor always fails"),
        ("contract-2", IncompatibleContract, "2.0.0"),
        ("wrong-base", PluginLoadError, "not a subclass of IOManager"),
        ("import-exits", PluginLoadError, "exited with code 3 while loading"),
        ("import-raises", PluginLoadError, "broken at import on purpose"),
    ],
)
def test_load_failures_raise_the_load_error(name: str, error: type, text: str) -> None:
    with pytest.raises(error, match=text) as caught:
        spawn_plugin("IOManager", hostile(name), options=FAST)
    assert type(caught.value) is error


def test_executors_cannot_be_isolated() -> None:
    with pytest.raises(NotSupported, match="isolation: inprocess"):
        spawn_plugin("Executor", "flowstone_host.plugins.local_executor:LocalExecutor")


# -- crashes, restarts, timeouts, circuit breaker ----------------------------------------


def test_a_crash_mid_call_is_retryable_and_the_next_call_runs_on_a_new_child(spawn: Any) -> None:
    proxy = spawn(hostile("suicidal"), name="suicidal")
    first_pid = proxy.isolation.pid
    with capture(("flowstone", "plugin")) as events:
        with pytest.raises(PluginCrashed) as caught:
            proxy.exists("orders", None, die=True)
        proxy.store("orders", [1, 2], None)
    assert caught.value.retryable and caught.value.code == "plugin_crashed"
    assert "SIGKILL" in str(caught.value)
    assert proxy.load("orders", None) == [1, 2]
    assert proxy.isolation.pid != first_pid and not pid_alive(first_pid)
    names = [event[-1] for event, _, _ in events]
    assert names == ["died", "restarted"]
    assert events[0][2]["plugin"] == "suicidal" and "SIGKILL" in events[0][2]["reason"]


def test_a_call_past_its_timeout_is_cut_off_and_the_child_restarted(spawn: Any) -> None:
    options = IsolationOptions(timeout_s=0.5, restart=RestartPolicy(initial_backoff_s=0.05))
    proxy = spawn(hostile("sleepy"), options, name="sleepy")
    first_pid = proxy.isolation.pid
    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        proxy.exists("orders", None, sleep_s=30)
    # Cut off, not waited for: far under the call's 30 s, with room for killing and reaping
    # the child on a loaded machine (1.5 s was not always enough there).
    assert time.monotonic() - started < 10
    assert caught.value.retryable
    assert not pid_alive(first_pid)
    # The next call waits at most its own 0.5 s for the restart, and a spawn can take
    # longer under load: wait for the new child, observed, then call it.
    assert wait_until(lambda: proxy.isolation.state == "running", timeout_s=30)
    assert proxy.exists("orders", None) is False
    assert proxy.isolation.pid != first_pid


def test_repeated_crashes_open_the_circuit(spawn: Any) -> None:
    policy = RestartPolicy(initial_backoff_s=0.01, max_crashes=3, window_s=60)
    proxy = spawn(hostile("suicidal"), IsolationOptions(restart=policy), name="flaky")
    with capture(("flowstone", "plugin", "circuit_open")) as opened:
        for _ in range(3):
            with pytest.raises(PluginCrashed):
                proxy.exists("orders", None, die=True)
    assert proxy.isolation.state == "broken" and len(opened) == 1
    started = time.monotonic()
    with pytest.raises(Unavailable, match="circuit-broken") as caught:
        proxy.exists("orders", None)
    assert time.monotonic() - started < 0.1 and caught.value.retryable is False
    health = proxy.health_check()
    assert isinstance(health, Health) and not health.healthy
    assert "3 deaths within 60 s" in (health.reason or "")


# -- what the child sees -----------------------------------------------------------------


def test_the_child_sees_only_the_declared_variables(
    spawn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTONE_TEST_SECRET", "do-not-leak")
    options = IsolationOptions(env={"FLOWSTONE_TEST_VISIBLE": "yes"})
    proxy = spawn(hostile("environ"), options)
    seen = proxy.load("env", None, environ=True)
    workdir = seen["HOME"]
    assert seen == {
        **BASE_ENVIRONMENT,
        "HOME": workdir,
        "TMPDIR": workdir,
        "FLOWSTONE_TEST_VISIBLE": "yes",
    }
    assert os.path.basename(workdir).startswith("flowstone-") and os.path.isdir(workdir)
    proxy.close()
    assert not os.path.exists(workdir)


def test_garbage_on_stdout_and_stderr_becomes_log_lines(
    spawn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flowstone_host.plugin")
    proxy = spawn(hostile("noisy"), name="noisy")
    for i in range(3):
        proxy.store("orders", {"i": i}, None)
        assert proxy.load("orders", None) == {"i": i}

    def tagged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "plugin", None) == "noisy"]

    assert wait_until(lambda: sum("says hello" in r.getMessage() for r in tagged()) >= 7)
    assert {getattr(r, "stream", None) for r in tagged()} == {"stdout", "stderr"}


def test_stopping_leaves_no_grandchild(spawn: Any) -> None:
    proxy = spawn(hostile("forking"), IsolationOptions(stop_grace_s=0.5))
    child_pid = proxy.isolation.pid
    proxy.exists("x", None, spawn=True)
    grandchild = proxy.load("grandchild", None)
    assert pid_alive(grandchild)
    proxy.close()
    assert proxy.isolation.state == "stopped"
    assert wait_until(lambda: not pid_alive(grandchild) and not pid_alive(child_pid))
    with pytest.raises(Unavailable, match="was closed"):
        proxy.exists("x", None)


# -- item readers --------------------------------------------------------------------------


#: The host's callables policy, as it crosses to an isolated reader.
HELPERS_ALLOWED = {"callables": ["flowstone_hostile.helpers"]}


def test_an_isolated_reader_refuses_a_function_outside_the_host_allow_list(spawn: Any) -> None:
    with pytest.raises(PermissionDenied, match=r"callables\.allow: flowstone_hostile\.helpers"):
        spawn(
            "flowstone_host.plugins.custom_reader:CustomItemReader",
            kind="ItemReader",
            config={"function": "os:listdir"},
            facts=HELPERS_ALLOWED,
        )


def test_an_item_reader_is_built_per_instance_with_config_and_deps(spawn: Any) -> None:
    reader = spawn(
        "flowstone_host.plugins.custom_reader:CustomItemReader",
        kind="ItemReader",
        config={"function": "flowstone_hostile.helpers:upstream_items"},
        deps={"upstream": ["a", "b", "c"]},
        facts=HELPERS_ALLOWED,
    )
    assert isinstance(reader, ItemReader)
    assert reader.read(2) == Batch(["a", "b"], False)
    assert reader.read(2) == Batch(["c"], True)


def test_a_crashed_item_reader_is_not_restarted(spawn: Any) -> None:
    reader = spawn(
        "flowstone_host.plugins.custom_reader:CustomItemReader",
        kind="ItemReader",
        config={"function": "flowstone_hostile.helpers:upstream_items"},
        deps={"upstream": [1]},
        facts=HELPERS_ALLOWED,
    )
    os.kill(reader.isolation.pid, signal.SIGKILL)
    with pytest.raises(PluginCrashed):
        reader.read(1)
    with pytest.raises(Unavailable, match="not restarted"):
        reader.read(1)


# -- resources -----------------------------------------------------------------------------


def test_a_resource_handle_stays_in_the_child(spawn: Any) -> None:
    resource = spawn(("flowstone.resources", "lock"), kind="Resource", name="locks")
    handle = resource.setup({})
    assert isinstance(handle, RemoteHandle)
    assert (handle.plugin, handle.type_name) == ("locks", "lock")
    assert resource.health_check(handle) == Health.ok(handle="lock")
    resource.teardown(handle)
    health = resource.health_check(handle)
    assert not health.healthy and "already torn down" in (health.reason or "")
