"""Resolve ``"module:function"`` references from manifests to Python callables."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

__all__ = ["import_callable"]


def import_callable(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """Return the callable ``ref`` names (``"package.module:attr.path"``), or ``ref`` itself.

    Raises:
        ConfigError: ``ref`` is malformed, its module cannot be imported, the attribute is
            missing, or it is not callable.
    """
    if callable(ref):
        return ref
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise ConfigError(f"Expected 'module:function', got {ref!r}.")
    module_name, _, attr_path = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"Cannot import module {module_name!r} for {ref!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ConfigError(f"Module {module_name!r} has no attribute {attr_path!r}.") from None
    if not callable(target):
        raise ConfigError(f"{ref!r} is not callable.")
    function: Callable[..., Any] = target
    return function
