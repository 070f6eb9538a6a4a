"""The IO manager checks that catch what example values miss.

Generated values of every declared type (hypothesis), refusal of undeclared types, names
differing only by case, torn writes under a concurrent reader, ``close()``, a plain-data
``config_schema`` and building through the host's config checks. Mixed into
:class:`~flowstone_host.testing.IOManagerContract`, whose fixtures they use.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ..contracts.io_manager import IOManager
from ..errors import Conflict, FlowStoneError, NotFound, NotSupported, ValidationError
from ._checks import expect_error
from .values import (
    VALUE_TYPES,
    describe,
    large_values,
    refusal_samples,
    same,
    schema_problems,
    type_samples,
    value_strategy,
)

__all__ = ["IOManagerRobustnessChecks"]

Equal = Callable[[Any, Any], bool]

#: Bytes of each value the torn-write race stores.
TORN_VALUE_BYTES = 1 << 20
#: Loads that must start while a store is under way before the race may end early.
TORN_OVERLAPS = 40
#: Stores the torn-write race makes at least and at most, and its time budget.
TORN_STORES = (8, 400)
TORN_SECONDS = 4.0

_REFUSALS = (ValidationError, NotSupported)


class IOManagerRobustnessChecks:
    """Tests that need an ``io_manager``, ``io_asset`` and ``io_value_types`` fixture."""

    #: How many generated values each run stores and loads back (derandomized: every run
    #: tries the same ones, so a failure is never luck).
    io_generated_examples: int = 60

    def test_each_declared_value_type_loads_back_unchanged(
        self, io_manager: IOManager, io_asset: str, io_value_types: frozenset[str]
    ) -> None:
        """One value of each declared type, alone and nested, keeps its value and type."""
        for name, value in type_samples(io_value_types):
            io_manager.store(io_asset, value, name)
            loaded = io_manager.load(io_asset, name)
            assert same(value, loaded), (
                f"stored {describe(value)} (value type {name!r}), loaded {describe(loaded)}: "
                "the value or a type inside it changed. Store it unchanged, or leave "
                f"{name!r} out of value_types and refuse such values."
            )

    def test_generated_values_load_back_unchanged(
        self, io_manager: IOManager, io_asset: str, io_value_types: frozenset[str]
    ) -> None:
        """Values hypothesis builds from the declared types load back the same."""
        pytest.importorskip("hypothesis", reason="pip install hypothesis")
        import hypothesis

        strategy = value_strategy(io_value_types)
        if strategy is None:  # tables only: the refusal check holds it to refusing the rest
            assert not set(io_value_types) & set(VALUE_TYPES)
            return

        @hypothesis.settings(
            max_examples=self.io_generated_examples,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            # no explain phase: it traces every line, and the shrunk value says enough
            phases=[p for p in hypothesis.Phase if p.name != "explain"],
        )
        @hypothesis.given(strategy)
        def round_trip(value: Any) -> None:
            io_manager.store(io_asset, value, "generated")
            loaded = io_manager.load(io_asset, "generated")
            assert same(value, loaded), (
                f"stored {describe(value)}, loaded {describe(loaded)}: the value or a type "
                "inside it changed"
            )

        round_trip()

    def test_undeclared_value_types_are_refused_not_changed(
        self, io_manager: IOManager, io_asset: str, io_value_types: frozenset[str]
    ) -> None:
        """A value holding an undeclared type raises, naming the type; nothing is stored."""
        samples = refusal_samples(io_value_types)
        # declaring every type the kit knows leaves nothing to refuse: the round-trip checks
        # above then hold the plugin to every one of them
        assert samples or set(io_value_types) >= set(VALUE_TYPES)
        for index, (name, value, names) in enumerate(samples):
            partition = f"refused-{index}"
            try:
                io_manager.store(io_asset, value, partition)
            except _REFUSALS as exc:
                assert any(word in str(exc) for word in names), (
                    f"refusing {describe(value)}, the {type(exc).__name__} should name the "
                    f"type ({' or '.join(names)}): {exc}"
                )
            else:
                loaded = _load_or_missing(io_manager, io_asset, partition)
                pytest.fail(
                    f"stored {describe(value)}, whose value type {name!r} is not in "
                    f"value_types, and it loads back as {describe(loaded)}. Refuse it with a "
                    "ValidationError naming the type, or declare the type if it round-trips."
                )
            assert not io_manager.exists(io_asset, partition), (
                f"a refused value {describe(value)} left something stored"
            )

    def test_names_differing_only_by_case_do_not_overwrite(
        self, io_manager: IOManager, io_asset: str, two_values: tuple[Any, Any], io_equal: Equal
    ) -> None:
        """``Asset``/``asset`` and ``Eu``/``eu`` are different keys, or the second is refused."""
        first, second = two_values
        upper = f"{io_asset}_Case"
        pairs = [
            ((upper, "p"), (upper.lower(), "p")),
            ((io_asset, "Eu-West"), (io_asset, "eu-west")),
        ]
        for (asset, partition), (other_asset, other_partition) in pairs:
            io_manager.store(asset, first, partition)
            try:
                io_manager.store(other_asset, second, other_partition)
            except (*_REFUSALS, Conflict):
                pass  # refused: the plugin cannot tell them apart, and says so
            else:
                loaded = io_manager.load(other_asset, other_partition)
                assert io_equal(second, loaded), f"{other_asset!r}/{other_partition!r} lost"
            loaded = io_manager.load(asset, partition)
            assert io_equal(first, loaded), (
                f"storing ({other_asset!r}, {other_partition!r}) overwrote ({asset!r}, "
                f"{partition!r}), which differs only by case: it now loads {describe(loaded)}"
            )

    def test_a_concurrent_reader_never_sees_a_torn_write(
        self,
        io_manager: IOManager,
        io_asset: str,
        io_value_types: frozenset[str],
        two_values: tuple[Any, Any],
        io_equal: Equal,
    ) -> None:
        """While large values are stored alternately, every load is one of them whole."""
        pair = large_values(io_value_types, TORN_VALUE_BYTES)
        equal: Equal = same if pair is not None else io_equal
        race = _TornWriteRace(io_manager, io_asset, pair or two_values, equal)
        race.run()
        assert not race.torn, (
            f"a load during a store returned something other than a stored value "
            f"({len(race.torn)} of {race.loads} loads; {race.overlaps} overlapped a store): "
            f"{race.torn[0]}. Write to a temporary place and rename, or use a transaction."
        )

    def test_close_is_idempotent_and_later_calls_fail_clearly(
        self,
        io_manager: IOManager,
        io_config: Mapping[str, Any] | None,
        io_build: Callable[[Mapping[str, Any]], IOManager],
        io_asset: str,
        two_values: tuple[Any, Any],
        io_equal: Equal,
    ) -> None:
        """A second ``close()`` does nothing; a call after it works or raises a FlowStoneError.

        Runs on an instance of its own, built from ``io_config`` (``io_manager`` may be
        shared), so it is skipped without one.
        """
        if io_config is None:
            pytest.skip("define io_config: close() is checked on an instance of its own")
        closed = io_build(io_config)
        first, _ = two_values
        closed.store(io_asset, first, "p")
        closed.close()
        closed.close()
        for name, call in _calls(closed, io_asset, first).items():
            try:
                result = call()
            except FlowStoneError:
                continue
            except Exception as exc:
                pytest.fail(
                    f"{name}() after close() raised {type(exc).__name__}: {exc}. After close(), "
                    "raise a FlowStoneError (e.g. Unavailable('... is closed')) or keep working."
                )
            if name == "load":
                assert io_equal(first, result), f"load() after close() returned {result!r}"

    def test_config_schema_is_plain_data(self, io_manager: IOManager) -> None:
        """The schema survives a JSON round trip, standard coercions (``int``...) aside."""
        schema = type(io_manager).config_schema
        if schema is None:
            pytest.skip("the plugin declares no config_schema")
        problems = schema_problems(schema)
        assert not problems, "; ".join(problems)
        json.dumps(schema, default=lambda value: getattr(value, "__name__", None))

    def test_builds_through_the_hosts_config_checks(
        self,
        io_manager: IOManager,
        io_config: Mapping[str, Any] | None,
        io_build: Callable[[Mapping[str, Any]], IOManager],
        io_asset: str,
        two_values: tuple[Any, Any],
        io_equal: Equal,
    ) -> None:
        """Built from ``io_config`` as checked by the host, it stores and loads."""
        if io_config is None:
            pytest.skip("define io_config to build the plugin through the host's checks")
        built = io_build(io_config)
        try:
            first, _ = two_values
            built.store(io_asset, first, "configured")
            assert io_equal(first, built.load(io_asset, "configured"))
            built.delete(io_asset, "configured")
        finally:
            built.close()

    def test_unknown_config_keys_are_refused(
        self,
        io_manager: IOManager,
        io_config: Mapping[str, Any] | None,
        io_build: Callable[[Mapping[str, Any]], IOManager],
    ) -> None:
        """A misspelt key (``indnet``) is refused by the schema, never ignored."""
        if io_config is None:
            pytest.skip("define io_config to build the plugin through the host's checks")
        if type(io_manager).config_schema is None:
            pytest.skip("no config_schema: the host accepts any config")
        unknown = {**io_config, "flowstone_conformance_unknown": 1}
        with expect_error(ValidationError, "flowstone_conformance_unknown"):
            io_build(unknown).close()


def _calls(io: IOManager, asset: str, value: Any) -> dict[str, Callable[[], Any]]:
    return {
        "load": lambda: io.load(asset, "p"),
        "exists": lambda: io.exists(asset, "p"),
        "store": lambda: io.store(asset, value, "q"),
        "list_partitions": lambda: io.list_partitions(asset),
        "delete": lambda: io.delete(asset, "q"),
    }


def _load_or_missing(io_manager: IOManager, asset: str, partition: str) -> Any:
    try:
        return io_manager.load(asset, partition)
    except FlowStoneError as exc:
        return f"<{type(exc).__name__}>"


class _TornWriteRace:
    """A writer storing two values alternately, and a reader loading in a loop meanwhile.

    The race ends after :data:`TORN_STORES` ``[1]`` stores or :data:`TORN_SECONDS`, or
    early once at least ``TORN_STORES[0]`` stores were made and :data:`TORN_OVERLAPS`
    loads started while a store was under way: a non-atomic write is then caught every
    run, without depending on how long one store takes.
    """

    def __init__(self, io: IOManager, asset: str, pair: tuple[Any, Any], equal: Equal) -> None:
        self.io, self.asset, self.pair, self.equal = io, asset, pair, equal
        self.storing = threading.Event()
        self.done = threading.Event()
        self.loads = self.overlaps = 0
        self.torn: list[str] = []

    def run(self) -> None:
        self.io.store(self.asset, self.pair[0], "torn")
        reader = threading.Thread(target=self._read, name="kit-torn-reader", daemon=True)
        reader.start()
        try:
            self._write()
        finally:
            self.done.set()
            reader.join(timeout=60)

    def _write(self) -> None:
        least, most = TORN_STORES
        deadline = time.monotonic() + TORN_SECONDS
        for index in range(most):
            self.storing.set()
            self.io.store(self.asset, self.pair[(index + 1) % 2], "torn")
            self.storing.clear()
            if self.torn or (index >= least and self.overlaps >= TORN_OVERLAPS):
                return
            if index >= least and time.monotonic() > deadline:
                return

    def _read(self) -> None:
        while not self.done.is_set():
            overlapping = self.storing.is_set()
            try:
                loaded = self.io.load(self.asset, "torn")
            except NotFound:
                continue
            except Exception as exc:
                self.torn.append(f"load raised {type(exc).__name__}: {exc}")
                return
            self.loads += 1
            self.overlaps += overlapping
            if not any(self.equal(value, loaded) for value in self.pair):
                self.torn.append(f"loaded {describe(loaded)}")
                return
