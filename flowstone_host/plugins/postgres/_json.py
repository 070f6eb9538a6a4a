"""JSON text for jsonb columns: strict (no NaN), with a clear error for what JSON cannot hold."""

from __future__ import annotations

import json
from typing import Any

from ...errors import ValidationError

__all__ = ["dumps"]


def dumps(value: Any, what: str) -> str:
    """Return ``value`` as JSON text.

    Raises:
        ValidationError: ``value`` is not JSON-serialisable (NaN included).
    """
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{what} must be JSON-serialisable to be stored in PostgreSQL: {exc}",
            details={"type": type(value).__name__},
        ) from None
