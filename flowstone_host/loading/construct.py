"""Build a plugin from its config: plain data in, host facts by keyword on request.

The host builds a plugin as ``cls(config)`` (a per-run kind as ``cls(config, deps)``),
``config`` a fresh plain copy (dicts, lists, scalars) the plugin may mutate. A constructor
may also ask for these host facts by declaring the keyword:

- ``resources``: ``{name: handle}`` of the resources its declaration ``depends_on``;
- ``state_dir``: the host's state folder (a ``str``), for embedded durable state;
- ``callables``: the host's :class:`~..callables.CallablePolicy`, which a plugin that
  imports functions named in its config must resolve them under.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..callables import CallablePolicy
from ..kinds import kind_info
from ..manifest.model import thaw

__all__ = ["HostFacts", "build_plugin", "per_run_factory"]


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the host offers plugin constructors (see the module docstring)."""

    state_dir: str | None = None
    callables: CallablePolicy = field(default_factory=CallablePolicy)
    resources: Mapping[str, Any] = field(default_factory=dict)

    def offered(self) -> dict[str, Any]:
        """The keywords a constructor may ask for, by name."""
        return {
            "state_dir": self.state_dir,
            "callables": self.callables,
            "resources": dict(self.resources),
        }


def build_plugin(
    cls: Any,
    kind: str,
    config: Mapping[str, Any],
    facts: HostFacts,
    deps: Mapping[str, Any] | None = None,
) -> Any:
    """Return ``cls(config[, deps], **facts it asks for)``, config thawed to plain data."""
    args: tuple[Any, ...] = (thaw(config),)
    if kind_info(kind).per_run:
        args += (dict(deps or {}),)
    wanted = _keywords(cls)
    return cls(*args, **{k: v for k, v in facts.offered().items() if k in wanted})


def per_run_factory(plugin_class: Any, kind: str, facts: HostFacts) -> Callable[..., Any]:
    """A per-run kind's registry instance: builds one plugin per run, with host facts."""

    def build(config: Mapping[str, Any], deps: Mapping[str, Any] | None = None) -> Any:
        return build_plugin(plugin_class, kind, config, facts, deps)

    return build


@functools.lru_cache(maxsize=512)
def _keywords(cls: Any) -> frozenset[str]:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(
        p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
