"""The telemetry emitter contract: send host events somewhere (logs, metrics, traces)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from .plugin import Plugin

__all__ = ["TelemetryEmitter"]


class TelemetryEmitter(Plugin):
    """Receives every telemetry event under the prefixes it is attached to.

    The host attaches each declared emitter with :func:`flowstone_host.telemetry.attach`
    under ``config["prefix"]`` (default ``["flowstone"]``).

    Invariants:

    - ``emit`` returns quickly; it runs on the caller's thread.
    - ``emit`` should not raise: an emitter that raises is detached and logged, and the
      caller carries on.
    """

    @abstractmethod
    def emit(
        self, event: tuple[str, ...], measurements: Mapping[str, Any], metadata: Mapping[str, Any]
    ) -> None:
        """Handle one event."""
