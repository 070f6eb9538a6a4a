"""The installed plugins, as manifest checking asks for them (a ``manifest.catalog.Catalog``)."""

from __future__ import annotations

from typing import Any

from ..kinds import kind_info
from ..manifest.catalog import EntryPointInfo
from ..manifest.host_config import HostConfig
from . import entry_points
from .loader import PluginLoader

__all__ = ["InstalledPlugins", "installed"]


class InstalledPlugins:
    """Entry points found by :mod:`.entry_points`, classes read through a loader.

    Args:
        loader: Applies the sandbox policy and the import probe to every class read.
    """

    def __init__(self, loader: PluginLoader) -> None:
        self.loader = loader

    @property
    def default_isolation(self) -> str:
        return self.loader.sandbox.default_isolation

    def find(self, kind: str, name: str) -> EntryPointInfo | None:
        return entry_points.find(kind_info(kind).namespace, name)

    def names(self, kind: str) -> list[str]:
        return [info.name for info in entry_points.discover(kind_info(kind).namespace)]

    def plugin_class(self, info: EntryPointInfo, isolation: str) -> type[Any]:
        return self.loader.class_of(info, isolation)


def installed(host: HostConfig | None = None) -> InstalledPlugins:
    """Return the installed plugins under ``host``'s policy (the built-in defaults if
    ``None``)."""
    return InstalledPlugins(PluginLoader.for_host(host or HostConfig.defaults()))
