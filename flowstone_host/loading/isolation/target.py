"""What an isolated child imports: an entry point's ``module:attr`` value or its name."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

__all__ = ["Target", "TargetNotFound", "describe_target", "load_target"]

#: ``"package.module:attr"`` (an entry point's value) or ``(namespace, name)``.
Target = str | tuple[str, str]


class TargetNotFound(LookupError):
    """No installed distribution provides the named entry point."""


def describe_target(target: Target | Sequence[str]) -> str:
    """Return a label for logs and errors: the value, or ``namespace/name``."""
    return target if isinstance(target, str) else "/".join(target)


def load_target(target: Target | Sequence[str]) -> Any:
    """Import the target and return the object it names (in the child, never the host).

    Raises:
        TargetNotFound: no entry point ``name`` in ``namespace``.
        Exception: whatever importing the plugin's module raises.
    """
    if isinstance(target, str):
        return _load_value(target)
    from importlib.metadata import entry_points  # only here: it is slow to import

    namespace, name = target
    found = entry_points(group=namespace, name=name)
    if not found:
        raise TargetNotFound(f"No entry point {name!r} in namespace {namespace!r} is installed")
    return _load_value(next(iter(found)).value)


def _load_value(value: str) -> Any:
    # An entry point value: "package.module:attr.attr [extras]"; extras do not matter here.
    module, _, attrs = value.split("[", 1)[0].partition(":")
    loaded = importlib.import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        loaded = getattr(loaded, attr)
    return loaded
