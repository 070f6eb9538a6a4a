"""What an isolated child imports: an entry point's ``module:attr`` value or its name."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
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
        return EntryPoint(name="isolated", value=target, group="flowstone.isolated").load()
    namespace, name = target
    found = entry_points(group=namespace, name=name)
    if not found:
        raise TargetNotFound(f"No entry point {name!r} in namespace {namespace!r} is installed")
    return next(iter(found)).load()
