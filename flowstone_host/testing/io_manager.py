"""The IO manager conformance tests."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import pytest

# The checks' asserts live outside test modules too; rewrite them before their import.
pytest.register_assert_rewrite(f"{__package__}.io_manager_checks", f"{__package__}.values")

from ..contracts.io_manager import IOManager, Partition  # noqa: E402
from ..errors import NotFound, NotSupported, ValidationError  # noqa: E402
from ..partitions import partition_key  # noqa: E402
from ._checks import (  # noqa: E402
    PluginChecks,
    expect_error,
    run_in_threads,
    sample_partitions,
    unique_name,
)
from .io_manager_checks import IOManagerRobustnessChecks  # noqa: E402
from .values import build_checked, declared_value_types  # noqa: E402

__all__ = ["IOManagerContract"]

Equal = Callable[[Any, Any], bool]


def _key(partition: Any) -> str:
    try:
        return partition_key(partition)
    except ValidationError:
        return f"<not a partition value: {partition!r}>"


def _by_key(partitions: Sequence[Any]) -> list[Any]:
    return sorted(partitions, key=_key)


class IOManagerContract(IOManagerRobustnessChecks, PluginChecks):
    """Checks every invariant of :class:`~flowstone_host.IOManager`.

    Subclass it in a test module, naming the subclass ``Test...``, and define either

    - ``io_manager_class`` and ``io_config``: the kit builds the IO manager as the host
      does, with the config checked by the class's ``config_schema`` (defaults filled,
      coercions applied, unknown keys refused), and closes it after each test; or
    - ``io_manager``: a fresh, ready instance per test (built with ``build_io_manager``
      to have the host's config checks too).

    Override these fixtures when your backend holds only some kinds of data:

    - ``io_value_types``: the value types of :data:`~flowstone_host.testing.values.VALUE_TYPES`
      it holds (default: the plugin's ``value_types`` attribute, else all of them). Values
      made of these are generated (hypothesis) and must load back unchanged, type for
      type; a value of any other type must be refused with a ValidationError or
      NotSupported naming the type.
    - ``io_values``: at least two unequal values your backend stores (default: JSON-like
      dicts, lists, strings and numbers).
    - ``io_partitions``: distinct partition values (default: ``None``, a ``str``, an ``int``,
      a ``date``, a ``datetime``, a tuple and a mapping).
    - ``io_equal``: ``(expected, loaded) -> bool`` (default ``==``), e.g. for data frames.
    - ``io_asset``: an asset name no other test uses (default: a fresh unique name).
    - ``io_keywords``: keywords the host would pass the constructor (``resources``, ...).

    Example::

        class TestJsonIOManager(IOManagerContract):
            io_manager_class = pytest.fixture(lambda self: JsonIOManager)

            @pytest.fixture
            def io_config(self, tmp_path):
                return {"root": str(tmp_path)}

    ``list_partitions`` tests are skipped when it raises ``NotSupported``.
    """

    contract_abc = IOManager

    @pytest.fixture
    def _plugin_under_test(self, io_manager: IOManager) -> IOManager:
        return io_manager

    @pytest.fixture
    def io_manager_class(self) -> type[IOManager] | None:
        """The class the default ``io_manager`` is built from (default: none)."""
        return None

    @pytest.fixture
    def io_config(self) -> Mapping[str, Any] | None:
        """A config as a manifest gives it, before the host's checks (default: none)."""
        return None

    @pytest.fixture
    def io_keywords(self) -> dict[str, Any]:
        """Keywords the host passes the constructor, e.g. ``resources`` (default: none)."""
        return {}

    @pytest.fixture
    def io_build(
        self, io_manager: IOManager, io_keywords: dict[str, Any]
    ) -> Callable[[Mapping[str, Any]], IOManager]:
        """``build(config)``: a new instance from a manifest's config, checked as the host
        checks it (default: ``type(io_manager)`` built with :func:`build_checked`); the
        ``io_config`` checks build their own instances with it."""
        return lambda config: build_checked(type(io_manager), config, **io_keywords)

    @pytest.fixture
    def build_io_manager(self) -> Iterator[Callable[..., Any]]:
        """``build(cls, config, **keywords)``: build as the host does; closed after the test.

        The config is checked by ``cls.config_schema`` first (defaults, coercion, unknown
        keys refused with a ValidationError), exactly as a manifest's config is.
        """
        built: list[Any] = []

        def build(cls: type, config: Mapping[str, Any], **keywords: Any) -> Any:
            built.append(build_checked(cls, config, **keywords))
            return built[-1]

        yield build
        for plugin in reversed(built):
            plugin.close()

    @pytest.fixture
    def io_manager(
        self,
        io_manager_class: type[IOManager] | None,
        io_config: Mapping[str, Any] | None,
        io_keywords: dict[str, Any],
        build_io_manager: Callable[..., Any],
    ) -> IOManager:
        """The IO manager under test, built from ``io_manager_class`` and ``io_config``."""
        if io_manager_class is None:
            pytest.fail("define the io_manager fixture, or io_manager_class and io_config")
        manager: IOManager = build_io_manager(io_manager_class, io_config or {}, **io_keywords)
        return manager

    @pytest.fixture
    def io_value_types(self, io_manager: IOManager) -> frozenset[str]:
        """The value types the IO manager holds unchanged (default: its ``value_types``)."""
        return declared_value_types(io_manager)

    @pytest.fixture
    def io_values(self) -> list[Any]:
        """Values to store and load back."""
        return [
            {"rows": [1, 2, 3], "name": "first"},
            [1, 2.5, "three", None, True],
            "text",
            42,
            {"nested": {"empty": [], "flag": False}},
        ]

    @pytest.fixture
    def io_partitions(self) -> list[Any]:
        """Partition values, one of each supported kind."""
        return sample_partitions()

    @pytest.fixture
    def io_equal(self) -> Equal:
        """How a loaded value is compared with the stored one."""
        return operator.eq

    @pytest.fixture
    def io_asset(self) -> str:
        """An asset name no other test uses."""
        return unique_name("conformance")

    @pytest.fixture
    def two_values(self, io_values: list[Any], io_equal: Equal) -> tuple[Any, Any]:
        """The first two sample values, which must differ."""
        assert len(io_values) >= 2, "io_values needs at least two values"
        first, second = io_values[:2]
        assert not io_equal(first, second), "the first two io_values must differ"
        return first, second

    @staticmethod
    def assert_loads(
        io: IOManager, asset: str, partition: Partition, expected: Any, equal: Equal
    ) -> None:
        """Assert that ``(asset, partition)`` loads a value equal to ``expected``."""
        loaded = io.load(asset, partition)
        assert equal(expected, loaded), (
            f"load({asset!r}, {partition!r}) returned {loaded!r}, expected {expected!r}"
        )

    @staticmethod
    def listed(io: IOManager, asset: str) -> list[Any]:
        """Return ``list_partitions(asset)``, skipping the test when it is not supported."""
        try:
            return list(io.list_partitions(asset))
        except NotSupported:
            pytest.skip(f"{type(io).__name__} does not list partitions")

    def test_store_then_load_returns_an_equal_value(
        self, io_manager: IOManager, io_asset: str, io_values: list[Any], io_equal: Equal
    ) -> None:
        for value in io_values:
            io_manager.store(io_asset, value, None)
            self.assert_loads(io_manager, io_asset, None, value, io_equal)

    def test_every_partition_kind_round_trips(
        self,
        io_manager: IOManager,
        io_asset: str,
        io_partitions: list[Any],
        io_values: list[Any],
        io_equal: Equal,
    ) -> None:
        stored = {_key(p): (p, io_values[i % len(io_values)]) for i, p in enumerate(io_partitions)}
        for partition, value in stored.values():
            io_manager.store(io_asset, value, partition)
        for partition, value in stored.values():
            self.assert_loads(io_manager, io_asset, partition, value, io_equal)

    def test_last_store_wins(
        self, io_manager: IOManager, io_asset: str, two_values: tuple[Any, Any], io_equal: Equal
    ) -> None:
        first, second = two_values
        for value in (first, second, first):
            io_manager.store(io_asset, value, "p")
            self.assert_loads(io_manager, io_asset, "p", value, io_equal)

    def test_load_of_never_stored_raises_not_found(
        self, io_manager: IOManager, io_asset: str
    ) -> None:
        with expect_error(NotFound, io_asset):
            io_manager.load(io_asset, "p")

    def test_load_after_delete_raises_not_found(
        self, io_manager: IOManager, io_asset: str, io_values: list[Any]
    ) -> None:
        io_manager.store(io_asset, io_values[0], "p")
        io_manager.delete(io_asset, "p")
        with expect_error(NotFound, io_asset):
            io_manager.load(io_asset, "p")

    def test_delete_of_missing_is_not_an_error(
        self, io_manager: IOManager, io_asset: str, io_values: list[Any]
    ) -> None:
        io_manager.delete(io_asset, "never-stored")
        io_manager.store(io_asset, io_values[0], "p")
        io_manager.delete(io_asset, "p")
        io_manager.delete(io_asset, "p")
        assert not io_manager.exists(io_asset, "p")

    def test_exists_exactly_between_store_and_delete(
        self, io_manager: IOManager, io_asset: str, two_values: tuple[Any, Any]
    ) -> None:
        first, second = two_values
        steps = [
            ("store", first, True),
            ("store", second, True),
            ("delete", None, False),
            ("store", first, True),
        ]
        assert io_manager.exists(io_asset, "p") is False, "exists() before any store"
        for action, value, expected in steps:
            if action == "store":
                io_manager.store(io_asset, value, "p")
            else:
                io_manager.delete(io_asset, "p")
            assert io_manager.exists(io_asset, "p") is expected, f"exists() after {action}"
            assert io_manager.exists(io_asset, "other") is False, "exists() of another partition"

    def test_partitions_are_independent(
        self,
        io_manager: IOManager,
        io_asset: str,
        io_partitions: list[Any],
        two_values: tuple[Any, Any],
        io_equal: Equal,
    ) -> None:
        first, second = two_values
        for partition in io_partitions:
            io_manager.store(io_asset, first, partition)
        changed, *others = io_partitions
        io_manager.store(io_asset, second, changed)
        for partition in others:
            self.assert_loads(io_manager, io_asset, partition, first, io_equal)
        io_manager.delete(io_asset, changed)
        for partition in others:
            assert io_manager.exists(io_asset, partition), f"{partition!r} lost by a delete"
            self.assert_loads(io_manager, io_asset, partition, first, io_equal)

    def test_assets_are_independent(
        self, io_manager: IOManager, io_asset: str, two_values: tuple[Any, Any], io_equal: Equal
    ) -> None:
        first, second = two_values
        other = f"{io_asset}_other"
        io_manager.store(io_asset, first, "p")
        io_manager.store(other, second, "p")
        self.assert_loads(io_manager, io_asset, "p", first, io_equal)
        io_manager.delete(other, "p")
        self.assert_loads(io_manager, io_asset, "p", first, io_equal)
        assert not io_manager.exists(other, "p")

    def test_list_partitions_returns_stored_values_with_their_types(
        self, io_manager: IOManager, io_asset: str, io_partitions: list[Any], io_values: list[Any]
    ) -> None:
        for partition in io_partitions:
            io_manager.store(io_asset, io_values[0], partition)
            io_manager.store(io_asset, io_values[0], partition)
        listed = self.listed(io_manager, io_asset)
        assert [_key(p) for p in _by_key(listed)] == [_key(p) for p in _by_key(io_partitions)], (
            f"list_partitions returned {listed!r}; expected each of {io_partitions!r} once, "
            "as the same values and types (a date as a date, a tuple as a tuple)"
        )
        assert _by_key(listed) == _by_key(io_partitions)

    def test_list_partitions_leaves_out_deleted_partitions_and_other_assets(
        self, io_manager: IOManager, io_asset: str, io_values: list[Any]
    ) -> None:
        assert self.listed(io_manager, io_asset) == [], "an asset never stored lists partitions"
        io_manager.store(io_asset, io_values[0], "kept")
        io_manager.store(io_asset, io_values[0], "deleted")
        io_manager.delete(io_asset, "deleted")
        io_manager.store(f"{io_asset}_other", io_values[0], "elsewhere")
        assert self.listed(io_manager, io_asset) == ["kept"]

    def test_concurrent_stores_from_threads(
        self, io_manager: IOManager, io_asset: str, io_values: list[Any], io_equal: Equal
    ) -> None:
        values = [io_values[i % len(io_values)] for i in range(32)]

        def store_own(i: int) -> Any:
            io_manager.store(io_asset, values[i], f"thread-{i}")
            return io_manager.load(io_asset, f"thread-{i}")

        def store_shared(i: int) -> None:
            io_manager.store(io_asset, values[i], "shared")

        loaded = run_in_threads([partial(store_own, i) for i in range(len(values))])
        run_in_threads([partial(store_shared, i) for i in range(len(values))])
        for i, value in enumerate(values):
            assert io_equal(value, loaded[i]), f"thread {i} loaded {loaded[i]!r}"
            self.assert_loads(io_manager, io_asset, f"thread-{i}", value, io_equal)
        final = io_manager.load(io_asset, "shared")
        assert any(io_equal(v, final) for v in values), f"racing stores left {final!r}"

    def test_unknown_options_are_ignored(
        self, io_manager: IOManager, io_asset: str, io_values: list[Any], io_equal: Equal
    ) -> None:
        unknown = {"flowstone_conformance_unknown_option": True}
        io_manager.store(io_asset, io_values[0], "p", **unknown)
        assert io_manager.exists(io_asset, "p", **unknown)
        assert io_equal(io_values[0], io_manager.load(io_asset, "p", **unknown))
        io_manager.delete(io_asset, "p", **unknown)
        assert not io_manager.exists(io_asset, "p")
