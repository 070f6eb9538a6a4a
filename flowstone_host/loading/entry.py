"""What loading one declaration yields: its live plugin, config and provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Entry"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One declaration in a registry.

    Attributes:
        kind: The manifest kind, e.g. ``"IOManager"``.
        name: The declaration's ``metadata.name``.
        instance: The live plugin (or its out-of-process proxy). For item readers, a
            factory (the reader class, or a function spawning an isolated reader): build one
            reader per run with ``entry.instance(entry.config, deps)``.
        config: The fully merged config, read-only.
        plugin: The entry-point name in the kind's namespace (``"memory"``).
        source: Where it was declared, ``file:line``, or ``None`` for built-in fallbacks.
        metadata: Loader facts (distribution, versions, isolation, target), read-only.
        handle: For resources, what ``setup`` returned: assets reach it as
            ``ctx.resources[name]``. ``None`` for other kinds.
    """

    kind: str
    name: str
    instance: Any
    config: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""
    source: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    handle: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
