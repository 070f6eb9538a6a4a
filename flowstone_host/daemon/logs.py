"""Log output of the daemon: one JSON object per line, or readable text.

JSON lines carry ``ts`` (ISO-8601, UTC), ``level``, ``logger``, ``message``, every field
passed through ``extra=`` (as JSON when it serialises, else its ``repr``), and ``exception``
(the formatted traceback) when the record has one. These keys win over extras of the same
name. Text lines read ``ts LEVEL logger: message key=value ...``, with the traceback below.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any, Literal

__all__ = ["JsonFormatter", "LogFormat", "TextFormatter", "configure_logging"]

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


def configure_logging(
    fmt: LogFormat = "text", level: int | str = "INFO", stream: IO[str] | None = None
) -> None:
    """Send log records to ``stream`` (default stderr) as JSON lines or text.

    Calling it again replaces the handler it installed before (other handlers on the root
    logger are left alone), so it is safe to call more than once.

    Args:
        fmt: ``"json"`` for one JSON object per line, ``"text"`` for readable lines.
        level: Root logger level, as a number or a name such as ``"DEBUG"``.
        stream: Where to write; defaults to ``sys.stderr``.

    Raises:
        ValueError: ``fmt`` or ``level`` is not one of the known values.
    """
    formatters: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}
    if fmt not in formatters:
        raise ValueError(f"Unknown log format {fmt!r}; use 'text' or 'json'.")
    root = logging.getLogger()
    root.setLevel(_level(level))
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(formatters[fmt]())
    root.addHandler(handler)


class _Handler(logging.StreamHandler[IO[str]]):
    """The handler :func:`configure_logging` installs, told apart from others by its class."""


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    names = logging.getLevelNamesMapping()
    if level.upper() not in names:
        raise ValueError(f"Unknown log level {level!r}; use one of {', '.join(sorted(names))}.")
    return names[level.upper()]


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line; never raises on odd extras."""
        payload: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        for key, value in _extras(record).items():
            payload.setdefault(key, _json_safe(value))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=_repr, allow_nan=False)


class TextFormatter(logging.Formatter):
    """Format a record as ``ts LEVEL logger: message key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as readable text, traceback on the lines below."""
        fields = "".join(f" {k}={_text(v)}" for k, v in _extras(record).items())
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {_message(record)}"
        line += fields
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}


def _timestamp(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # bad %-args: show what was logged rather than lose the record
        return f"{_repr(record.msg)} % {_repr(record.args)}"


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value, default=_repr, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _repr(value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c == "=" for c in value):
        return value
    try:
        return json.dumps(value, default=_repr)
    except (TypeError, ValueError, RecursionError):
        return _repr(value)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
