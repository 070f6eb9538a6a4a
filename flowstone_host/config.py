"""Config assembly: the one merge rule every layer uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["deep_merge"]


def deep_merge(base: Mapping[str, Any], *overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge ``overrides`` over ``base``, later ones winning, into a new dict.

    Mappings merge key by key, recursively; every other value (lists included) is replaced
    whole. Neither input is modified.
    """
    merged = _copy(base)
    for override in overrides:
        if override:
            _merge_into(merged, override)
    return merged


def _copy(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}


def _merge_into(target: dict[str, Any], override: Mapping[str, Any]) -> None:
    for key, value in override.items():
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge_into(current, value)
        else:
            target[key] = _copy(value) if isinstance(value, Mapping) else value
