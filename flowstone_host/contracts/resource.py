"""The resource contract: something set up once and shared by assets (a client, a pool)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from .plugin import Plugin
from .types import Health

__all__ = ["Resource"]


class Resource(Plugin):
    """Sets up and tears down one external resource that assets reach as ``ctx.resources``.

    The host builds the plugin as ``cls(config)``, calls ``setup(config)`` once, hands the
    returned handle to assets, and calls ``teardown(handle)`` once when the resource leaves
    (in reverse order of setup).

    Invariants (``flowstone_host.testing.ResourceContract`` checks each one):

    - ``setup`` returns a usable handle or raises; it never returns a half-built one.
    - ``teardown`` of a handle releases it and does not raise for a handle already broken.
    - ``health_check(handle)`` returns a :class:`Health` and never raises; ``None`` means
      the resource does not check itself.
    """

    @abstractmethod
    def setup(self, config: Mapping[str, Any]) -> Any:
        """Create the resource and return its handle.

        Raises:
            Unavailable: the backend could not be reached (retryable).
            ConfigError: the config cannot work.
        """

    @abstractmethod
    def teardown(self, resource: Any) -> None:
        """Release the handle returned by :meth:`setup`.

        Raises:
            Nothing: failures are logged by the plugin, never raised.
        """

    def health_check(self, resource: Any = None) -> Health | None:
        """Report the handle's health (optional); ``None`` means no check."""
        return None
