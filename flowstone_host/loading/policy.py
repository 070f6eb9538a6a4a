"""The sandbox policy: which distributions may load, by name pattern.

A deny pattern wins over an allow pattern; a distribution no allow pattern matches is
refused. The refusal names the rule, so the user knows what to change.
"""

from __future__ import annotations

from ..callables import matches
from ..manifest.host_config import Sandbox

__all__ = ["allows", "refusal"]


def refusal(sandbox: Sandbox, distribution: str) -> str | None:
    """Return the rule that refuses ``distribution`` (as text), or ``None`` if allowed."""
    denied = next((p for p in sandbox.deny if matches(distribution, (p,))), None)
    if denied is not None:
        return f"sandbox.policy.deny pattern {denied!r}"
    if not matches(distribution, sandbox.allow):
        return f"no sandbox.policy.allow pattern matches (allow: {list(sandbox.allow)})"
    return None


def allows(sandbox: Sandbox, distribution: str) -> bool:
    """Return whether ``sandbox`` lets ``distribution`` load."""
    return refusal(sandbox, distribution) is None
