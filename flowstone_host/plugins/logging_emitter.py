"""The logging telemetry emitter: every event as one structured log record."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from ..contracts.telemetry_emitter import TelemetryEmitter

__all__ = ["LoggingEmitter"]


class LoggingEmitter(TelemetryEmitter):
    """Logs each event on logger ``config["logger"]`` (default ``flowstone.telemetry``).

    The record's message is the dotted event name; measurements and metadata ride in
    ``extra`` as ``event``, ``measurements`` and ``metadata`` for structured formatters.
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        "logger": {"type": "string", "default": "flowstone.telemetry"},
        "level": {
            "type": "string",
            "allowed": ["DEBUG", "INFO", "WARNING", "ERROR"],
            "default": "DEBUG",
        },
        "prefix": {"type": "list", "schema": {"type": "string"}, "default": ["flowstone"]},
    }

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._logger = logging.getLogger(self.config.get("logger", "flowstone.telemetry"))
        self._level = logging.getLevelName(self.config.get("level", "DEBUG"))

    def emit(
        self, event: tuple[str, ...], measurements: Mapping[str, Any], metadata: Mapping[str, Any]
    ) -> None:
        if self._logger.isEnabledFor(self._level):
            self._logger.log(
                self._level,
                "%s %s",
                ".".join(event),
                dict(measurements),
                extra={
                    "event": event,
                    "measurements": dict(measurements),
                    "metadata": dict(metadata),
                },
            )
