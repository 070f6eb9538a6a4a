"""JSON encoding of persisted values: only what comes back equal is stored.

A value is JSON-safe when ``json.loads(json.dumps(value)) == value``: tuples, sets,
non-string keys, NaN and arbitrary objects are refused with a ``ValidationError`` naming
the value's place, instead of coming back changed (or not at all) after a restart.
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import ValidationError

__all__ = ["PLAIN", "dumps", "encode", "loads"]

#: Types whose values always come back equal (no round trip needed to check them).
PLAIN = frozenset({str, int, bool, type(None)})
_PLAIN = PLAIN
_encode = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode
#: Encode a value known to be JSON-safe (of a :data:`PLAIN` type, or already checked).
encode = _encode
loads = json.loads


def dumps(value: Any, what: str, **context: Any) -> str:
    """Return ``value`` as JSON text.

    Args:
        value: The value to persist.
        what: Names it in an error, e.g. ``"result of key 'k7' in barrier 'b1'"``.
        **context: Keyword context for the error (``key``, ``barrier_id``, ...).

    Raises:
        ValidationError: the value does not survive a JSON round trip unchanged.
    """
    try:
        text = _encode(value)
    except (TypeError, ValueError) as exc:
        raise _unsafe(value, what, str(exc), context) from exc
    if type(value) not in _PLAIN and json.loads(text) != value:
        raise _unsafe(value, what, f"it would come back as {text[:80]}", context)
    return text


def _unsafe(value: Any, what: str, why: str, context: dict[str, Any]) -> ValidationError:
    return ValidationError(
        f"The {what} is not JSON-safe ({why}): {value!r:.200}. Persisted values must be "
        "JSON (dict with str keys, list, str, int, finite float, bool, None).",
        details={k: v for k, v in context.items() if isinstance(v, str | int)},
        **context,
    )
