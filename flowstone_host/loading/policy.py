"""The sandbox policy: which distributions may load, by name pattern.

A deny pattern wins over an allow pattern; a distribution no allow pattern matches is
refused. The refusal names the rule, so the user knows what to change.
"""

from __future__ import annotations

from ..callables import matches
from ..errors import PluginRefused
from ..manifest.catalog import EntryPointInfo
from ..manifest.host_config import Sandbox

__all__ = ["allows", "refusal", "require_allowed"]


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


def require_allowed(sandbox: Sandbox, info: EntryPointInfo) -> None:
    """Refuse the plugin of entry point ``info`` if ``sandbox`` refuses its distribution.

    Raises:
        PluginRefused: naming the distribution and the rule, and what to change.
    """
    distribution = info.distribution or "<unknown>"
    rule = refusal(sandbox, distribution)
    if rule:
        raise PluginRefused(
            f"Plugin {info.name!r} comes from distribution {distribution!r}, which the "
            f"sandbox policy refuses ({rule}). Change sandbox.policy in the host config, "
            f"or use another plugin.",
            distribution=distribution,
            rule=rule,
        )
