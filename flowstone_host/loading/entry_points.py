"""Entry-point discovery and class import: the one module that talks to stevedore.

Discovery reads :mod:`importlib.metadata`, which knows each entry point's distribution and
version. Importing goes through stevedore's ``NamedExtensionManager`` so that only the named
entry point is imported, and an import failure is collected through
``on_load_failure_callback`` and raised as a :class:`PluginLoadError`.

Both layers cache: stevedore in memory (per ``sys.path``) and on disk (keyed by the mtimes
of ``sys.path`` entries), this module per namespace. :func:`refresh` drops the in-memory
caches so a distribution installed while the host runs is seen on the next reload; the disk
cache invalidates itself because installing changes those mtimes.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.metadata
import os
import sys
from typing import Any

from stevedore import ExtensionManager, NamedExtensionManager

from ..errors import NotFound, PluginLoadError, PluginRefused
from ..manifest.catalog import EntryPointInfo

__all__ = [
    "EntryPointInfo",
    "discover",
    "find",
    "load_class",
    "provenance",
    "refresh",
    "require",
]


@functools.cache
def discover(namespace: str) -> tuple[EntryPointInfo, ...]:
    """Return the entry points of ``namespace``, sorted by name, without importing any."""
    found: dict[tuple[str, str], EntryPointInfo] = {}
    for ep in importlib.metadata.entry_points(group=namespace):
        dist = getattr(ep, "dist", None)
        info = EntryPointInfo(
            namespace,
            ep.name,
            ep.value,
            dist.metadata["Name"] if dist is not None else None,
            dist.version if dist is not None else None,
        )
        found.setdefault((ep.name, ep.value), info)  # a dist seen twice on sys.path
    return tuple(sorted(found.values(), key=lambda i: (i.name, i.target)))


def find(namespace: str, name: str) -> EntryPointInfo | None:
    """Return the entry point ``name`` of ``namespace``, or ``None``."""
    return _by_name(namespace).get(name)


def require(namespace: str, name: str) -> EntryPointInfo:
    """Return the entry point ``name`` of ``namespace``.

    Raises:
        NotFound: no such entry point; the message lists what is installed and a near name.
    """
    info = find(namespace, name)
    if info is not None:
        return info
    names = [i.name for i in discover(namespace)]
    hint = difflib.get_close_matches(name, names, n=1)
    raise NotFound(
        f"No plugin {name!r} in {namespace} (installed: {', '.join(names) or 'none'})."
        + (
            f" Did you mean {hint[0]!r}?" if hint else " Install the distribution that provides it."
        ),
        namespace=namespace,
    )


def provenance(namespace: str, name: str) -> dict[str, str]:
    """Return ``{"distribution": ..., "version": ...}`` of entry point ``name``, as far as
    known (empty when no such entry point is installed)."""
    info = find(namespace, name)
    facts = {"distribution": info.distribution, "version": info.version} if info else {}
    return {k: v for k, v in facts.items() if v}


@functools.cache
def _by_name(namespace: str) -> dict[str, EntryPointInfo]:
    found: dict[str, EntryPointInfo] = {}
    for info in discover(namespace):
        found.setdefault(info.name, info)  # the first by target, as discover() orders them
    return found


@functools.cache
def load_class(namespace: str, name: str) -> Any:
    """Import and return the object entry point ``name`` of ``namespace`` points at.

    Only that entry point is imported; nothing is instantiated.

    Raises:
        NotFound: no such entry point.
        PluginRefused: more than one distribution provides that name.
        PluginLoadError: importing it failed; the original exception is the cause.
    """
    providers = sorted(
        {f"{i.distribution or '?'} ({i.target})" for i in discover(namespace) if i.name == name}
    )
    if len(providers) > 1:  # stevedore would import every one of them, unprobed
        raise PluginRefused(
            f"Entry point {name!r} in {namespace} is provided by more than one distribution: "
            f"{', '.join(providers)}. Uninstall all but one; none is loaded meanwhile.",
            plugin=name,
            namespace=namespace,
        )
    failures: list[BaseException] = []
    manager: NamedExtensionManager[Any] = NamedExtensionManager(
        namespace,
        names=[name],
        invoke_on_load=False,
        on_load_failure_callback=lambda _m, _ep, exc: failures.append(exc),
    )
    if failures:
        exc = failures[0]
        raise PluginLoadError(
            f"Entry point {name!r} in {namespace} failed to import: "
            f"{type(exc).__name__}: {exc}. Fix or reinstall the distribution that provides it.",
            plugin=name,
            namespace=namespace,
        ) from exc
    if name not in manager.names():
        raise NotFound(f"No entry point {name!r} in {namespace}.", plugin=name, namespace=namespace)
    return manager[name].plugin


def refresh() -> bool:
    """Forget cached entry points and classes if an installation changed since last time.

    Installing, upgrading or removing a distribution adds or removes a ``*.dist-info``
    folder, which changes the modification time of its ``sys.path`` folder; when no such
    time (and no ``sys.path`` entry) changed, the caches stay, so frequent reloads stay
    cheap. Returns whether the caches were dropped.
    """
    global _installed
    current = _installation_fingerprint()
    if current == _installed:
        return False
    _installed = current
    importlib.invalidate_caches()
    discover.cache_clear()
    _by_name.cache_clear()
    load_class.cache_clear()
    ExtensionManager.ENTRY_POINT_CACHE.clear()
    stevedore_cache = getattr(importlib.import_module("stevedore._cache"), "_c", None)
    internal = getattr(stevedore_cache, "_internal", None)
    if isinstance(internal, dict):
        internal.clear()  # private, so guarded: the disk cache still self-invalidates
    return True


_installed: tuple[tuple[str, int], ...] | None = None


def _installation_fingerprint() -> tuple[tuple[str, int], ...]:
    stamps = []
    for entry in sys.path:
        try:
            stamps.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            stamps.append((entry, -1))
    return tuple(stamps)
