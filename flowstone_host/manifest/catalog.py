"""What manifest checking needs to know of the installed plugins: a small interface.

Manifests are pure data and never import plugin machinery. Checking a declaration's
``spec.plugin`` and its config asks a :class:`Catalog`, which the loading layer implements
(:class:`flowstone_host.loading.catalog.InstalledPlugins`) under the host's sandbox policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Catalog", "EntryPointInfo"]


@dataclass(frozen=True, slots=True)
class EntryPointInfo:
    """One discovered entry point.

    Attributes:
        namespace: The entry-point group, e.g. ``"flowstone.io_managers"``.
        name: The entry-point name, what ``spec.plugin`` says.
        target: ``"module:attribute"``.
        distribution: The distribution that declares it, or ``None`` if unknown.
        version: That distribution's version, or ``None``.
    """

    namespace: str
    name: str
    target: str
    distribution: str | None
    version: str | None


class Catalog(Protocol):
    """The installed plugins, as manifest checking sees them."""

    @property
    def default_isolation(self) -> str:
        """Where a declaration without ``isolation`` runs (``inprocess`` or ``process``)."""
        ...

    def find(self, kind: str, name: str) -> EntryPointInfo | None:
        """Return entry point ``name`` of ``kind``'s namespace, or ``None``."""
        ...

    def names(self, kind: str) -> list[str]:
        """Return the names installed in ``kind``'s namespace, sorted."""
        ...

    def plugin_class(self, info: EntryPointInfo, isolation: str) -> type[Any]:
        """Return what may be read of the class without running it: its
        ``config_schema``, ``contract_version`` and ``plugin_version``.

        Raises:
            PluginRefused: the sandbox policy refuses its distribution.
            FlowStoneError: its import (or import probe) failed.
        """
        ...
