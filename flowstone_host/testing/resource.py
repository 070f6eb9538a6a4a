"""The resource conformance tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..contracts.resource import Resource
from ..contracts.types import Health
from ._checks import PluginChecks

__all__ = ["ResourceContract"]

BreakHandle = Callable[[Any], None]


def assert_health_or_none(health: Any, when: str) -> None:
    """Assert a ``health_check`` result is a ``Health`` or ``None``."""
    assert health is None or isinstance(health, Health), (
        f"health_check {when} returned {health!r}, not a Health or None"
    )


class ResourceContract(PluginChecks):
    """Checks every invariant of :class:`~flowstone_host.Resource`.

    Subclass it in a test module, naming the subclass ``Test...``, and define one fixture:

    - ``resource_plugin``: an instance of your Resource plugin class; the kit calls its
      ``setup``, ``teardown`` and ``health_check``.

    Override ``resource_config`` (default: the plugin's own ``config``) to choose what
    ``setup`` receives, and ``break_resource`` to break a live handle the way your backend
    breaks (a server gone, a connection killed); by default the kit breaks a handle by
    tearing it down once already.

    Example::

        class TestHttpClient(ResourceContract):
            @pytest.fixture
            def resource_plugin(self):
                return HttpClientResource({"base_url": "http://127.0.0.1:9"})
    """

    contract_abc = Resource

    @pytest.fixture
    def _plugin_under_test(self, resource_plugin: Resource) -> Resource:
        return resource_plugin

    @pytest.fixture
    def resource_config(self, resource_plugin: Resource) -> dict[str, Any]:
        """The config handed to ``setup``."""
        return dict(resource_plugin.config)

    @pytest.fixture
    def break_resource(self, resource_plugin: Resource) -> BreakHandle:
        """Break a live handle; the default tears it down."""
        return resource_plugin.teardown

    @pytest.fixture
    def resource_handle(
        self, resource_plugin: Resource, resource_config: dict[str, Any]
    ) -> Iterator[Any]:
        """A handle from ``setup``, torn down once when the test ends."""
        handle = resource_plugin.setup(resource_config)
        yield handle
        resource_plugin.teardown(handle)

    def test_setup_returns_a_handle(self, resource_handle: Any) -> None:
        assert resource_handle is not None, "setup() returned None instead of a usable handle"

    def test_teardown_releases_the_handle_without_raising(
        self, resource_plugin: Resource, resource_config: dict[str, Any]
    ) -> None:
        handle = resource_plugin.setup(resource_config)
        assert resource_plugin.teardown(handle) is None

    def test_teardown_of_a_broken_handle_does_not_raise(
        self,
        resource_plugin: Resource,
        resource_config: dict[str, Any],
        break_resource: BreakHandle,
    ) -> None:
        handle = resource_plugin.setup(resource_config)
        break_resource(handle)
        resource_plugin.teardown(handle)

    def test_health_check_of_a_live_handle_is_healthy_or_none(
        self, resource_plugin: Resource, resource_handle: Any
    ) -> None:
        health = resource_plugin.health_check(resource_handle)
        assert_health_or_none(health, "of a live handle")
        assert health is None or health.healthy, f"a fresh handle reports {health!r}"

    def test_health_check_of_a_broken_handle_does_not_raise(
        self,
        resource_plugin: Resource,
        resource_config: dict[str, Any],
        break_resource: BreakHandle,
    ) -> None:
        handle = resource_plugin.setup(resource_config)
        break_resource(handle)
        try:
            assert_health_or_none(resource_plugin.health_check(handle), "of a broken handle")
        finally:
            resource_plugin.teardown(handle)
