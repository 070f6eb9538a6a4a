"""JSON text for jsonb columns: strict (no NaN), with a clear error for what JSON cannot hold.

jsonb keeps a number as ``numeric``, which drops an exponent: ``1e+16`` comes back as
``10000000000000000``, an ``int``. Numbers with an exponent (only floats have one) are
therefore written out in plain decimal with a fraction (``10000000000000000.0``), which
jsonb keeps as written, so a float loads back a float.
"""

from __future__ import annotations

import decimal
import json
import re
from typing import Any

from ...errors import ValidationError

__all__ = ["dumps"]


def dumps(value: Any, what: str, **context: Any) -> str:
    """Return ``value`` as JSON text.

    Args:
        value: The value to store.
        what: Names it in an error, e.g. ``"The result of key 'k7'"``.
        **context: Keyword context for the error (``key``, ``execution_id``, ...).

    Raises:
        ValidationError: ``value`` is not JSON-serialisable (NaN included).
    """
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{what} must be JSON-serialisable to be stored in PostgreSQL: {exc}",
            details={"type": type(value).__name__},
            **context,
        ) from None
    if "\\u0000" in text and _NUL.search(text):
        raise ValidationError(
            f"{what} holds a str with the character U+0000, which PostgreSQL's jsonb cannot "
            "store; remove it, or use the pickle or arrow format.",
            details={"type": "str"},
            **context,
        )
    return _EXPONENT.sub(_plain_float, text) if "e" in text or "E" in text else text


# An escaped U+0000: \u0000 after an even number of backslashes (others escape themselves).
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
# A string token (left alone) or a number with an exponent.
_EXPONENT = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?[eE][-+]?\d+')


def _plain_float(match: re.Match[str]) -> str:
    token = match.group()
    if token.startswith('"'):
        return token
    plain = format(decimal.Decimal(token), "f")
    return plain if "." in plain else f"{plain}.0"
