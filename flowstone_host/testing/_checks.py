"""What every kit class shares: error and JSON checks, sample data, plugin-level tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from threading import Barrier
from typing import Any, ClassVar, TypeVar

import cerberus  # type: ignore[import-untyped]
import pytest

from ..contracts.plugin import Plugin
from ..contracts.types import Health
from ..contracts.versions import check_compatibility, contract_for
from ..errors import FlowStoneError

__all__ = [
    "PluginChecks",
    "assert_json_round_trip",
    "expect_error",
    "run_in_threads",
    "sample_partitions",
    "unique_name",
]

T = TypeVar("T")


def unique_name(prefix: str) -> str:
    """Return a name no other test uses, so a shared or durable backend needs no cleanup."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def sample_partitions() -> list[Any]:
    """Return one partition value of every supported kind, all with distinct keys."""
    day = dt.date(2024, 1, 31)
    return [
        None,
        "eu-west",
        7,
        day,
        dt.datetime(2024, 1, 31, 12, 30, 5),
        ("eu", 7),
        {"region": "eu", "day": day},
    ]


@contextmanager
def expect_error(error_type: type[FlowStoneError], *mentions: str) -> Iterator[None]:
    """Expect the block to raise ``error_type``; check its code first, then its message.

    Args:
        error_type: The :class:`FlowStoneError` subclass the contract names.
        *mentions: Words the message must contain (the culprit: an asset, an id).
    """
    try:
        yield
    except Exception as exc:
        code = getattr(exc, "code", None)
        assert isinstance(exc, error_type) and code == error_type.code, (
            f"expected {error_type.__name__} (code {error_type.code!r}), got "
            f"{type(exc).__name__} (code {code!r}): {exc}"
        )
        for word in mentions:
            assert word in str(exc), (
                f"the {error_type.__name__} message should name {word!r}: {exc}"
            )
    else:
        pytest.fail(f"expected {error_type.__name__} (code {error_type.code!r}); nothing raised")


def assert_json_round_trip(value: Any, what: str) -> None:
    """Assert ``value`` survives ``json.dumps`` then ``json.loads`` unchanged.

    Tuples, sets, non-string keys, NaN and arbitrary objects fail: they do not come back
    equal (or at all) once persisted as JSON.
    """
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        pytest.fail(f"{what} is not JSON-serialisable ({exc}): {value!r}")
    assert json.loads(text) == value, f"{what} changes in a JSON round trip: {value!r} -> {text}"


def run_in_threads(calls: list[Callable[[], T]], threads: int = 8) -> list[T]:
    """Run ``calls`` on ``threads`` threads released together; return results in order."""
    start = Barrier(min(threads, len(calls)), timeout=30)

    def gated(call: Callable[[], T], index: int) -> T:
        if index < start.parties:
            start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=start.parties) as pool:
        futures = [pool.submit(gated, call, i) for i, call in enumerate(calls)]
        return [future.result() for future in futures]


class PluginChecks:
    """Tests of what every plugin declares; a kit class supplies ``_plugin_under_test``."""

    #: The contract ABC the plugin must implement.
    contract_abc: ClassVar[type[Plugin]]

    def test_implements_the_contract(self, _plugin_under_test: Plugin) -> None:
        """The plugin is an instance of the contract's ABC."""
        assert isinstance(_plugin_under_test, self.contract_abc), (
            f"{type(_plugin_under_test).__name__} does not subclass {self.contract_abc.__name__}"
        )

    def test_contract_version_is_compatible(self, _plugin_under_test: Plugin) -> None:
        """A declared ``contract_version`` is one this host accepts (absent: legacy)."""
        plugin_class = type(_plugin_under_test)
        check_compatibility(plugin_class, contract_for(self.contract_abc))

    def test_config_schema_is_a_valid_cerberus_schema(self, _plugin_under_test: Plugin) -> None:
        """A declared ``config_schema`` is accepted by cerberus."""
        schema = type(_plugin_under_test).config_schema
        if schema is None:
            pytest.skip("the plugin declares no config_schema")
        cerberus.Validator(dict(schema))

    def test_health_check_returns_health_or_none(self, _plugin_under_test: Plugin) -> None:
        """``health_check()`` returns a ``Health`` or ``None`` and does not raise."""
        health = _plugin_under_test.health_check()
        assert health is None or isinstance(health, Health), (
            f"health_check() returned {health!r}, not a Health or None"
        )
