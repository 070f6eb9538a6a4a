"""Scatter keys: a stable name for each item, the same on every read of the source.

An item that is a mapping with a string ``scatter_key`` is named by it (the reader or the
source chooses). Any other item is named by the SHA-256 of its canonical JSON (keys
sorted, no spaces; values JSON cannot hold are written with ``repr``), first 32 hex
digits. Identical items therefore share one key and run once: give them distinct
``scatter_key`` values if each must run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["KEY_FIELD", "scatter_key"]

#: The item field naming an item's key, when present and a string.
KEY_FIELD = "scatter_key"

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=repr).encode


def scatter_key(item: Any) -> str:
    """Return the scatter key of ``item``."""
    if isinstance(item, Mapping):
        chosen = item.get(KEY_FIELD)
        if isinstance(chosen, str):
            return chosen
    return hashlib.sha256(_encode(item).encode()).hexdigest()[:32]
