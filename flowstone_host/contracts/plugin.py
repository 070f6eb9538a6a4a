"""What every plugin the host builds shares: construction from config, health, close."""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from typing import Any, ClassVar

from .types import Health

__all__ = ["Plugin"]


class Plugin(ABC):  # noqa: B024 - a base for the contract ABCs, which add the abstract methods
    """Base of the contract ABCs; plugins subclass a contract, not this class.

    The host builds a plugin as ``cls(config)``, ``config`` being the declaration's fully
    merged and validated mapping. A plugin class may declare these class attributes:

    - ``contract_version``: the semver of the contract it implements (``"1.0.0"``). Absent
      means legacy: accepted with a warning. A ``version()`` static or class method, as in
      the original design, is read when the attribute is absent.
    - ``config_schema``: a cerberus schema for its config; the host validates, coerces and
      fills defaults with it before construction.
    - ``plugin_version``: the plugin's own version, shown by ``flowstone-host plugins``.
    """

    config_schema: ClassVar[Mapping[str, Any] | None] = None

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})

    def health_check(self) -> Health | None:
        """Report whether the plugin can serve calls; ``None`` means it does not check.

        Must be cheap and must not raise: report failure as ``Health.unhealthy(reason)``.
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional, a no-op by default
        """Release connections and files; called once when the host drops the plugin.

        After ``close()`` the host makes no further call. The default does nothing.
        """
