"""Helpers of the loader tests: host configs, manifests, throwaway distributions, children."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowstone_host.loading import entry_points

HOSTILE = "flowstone_hostile"

#: Hostile modules that break at import: these must never reach the test process.
IMPORT_HOSTILE = tuple(
    f"{HOSTILE}.import_{what}" for what in ("raises", "exits", "segfaults", "hangs", "eats_memory")
)


def write_host_config(folder: Path, plugins_dir: Path, **sandbox: Any) -> Path:
    """Write ``folder/host.yaml`` reading ``plugins_dir``; ``sandbox`` keys override limits.

    ``allow``/``deny`` go to ``sandbox.policy``, ``probe_imports``/``default_isolation`` to
    ``sandbox``, anything else to ``sandbox.limits``.
    """
    policy = {k: sandbox.pop(k) for k in ("allow", "deny") if k in sandbox}
    top = {k: sandbox.pop(k) for k in ("probe_imports", "default_isolation") if k in sandbox}
    limits = {
        "import_timeout_s": 3,
        "call_timeout_s": 5,
        "memory_mb": 512,
        "cpu_s": 20,
        **sandbox,
    }
    spec: dict[str, Any] = {
        "plugins_dir": str(plugins_dir),
        "state_dir": str(folder / "state"),
        "sandbox": {"policy": policy, "limits": limits, **top},
        "health": {"interval_s": 60, "timeout_s": 5},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "host.yaml"
    document = {"apiVersion": "flowstone/v1", "kind": "HostConfig", "metadata": {"name": "t"}}
    path.write_text(yaml.safe_dump({**document, "spec": spec}, sort_keys=False))
    return path


def write_declaration(
    folder: Path, name: str, plugin: str, *, kind: str = "IOManager", **spec: Any
) -> Path:
    """Write one declaration to ``folder/<name>.yaml`` (one file each: a file is rejected whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "apiVersion": "flowstone/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"plugin": plugin, **spec},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


class SitePackages:
    """A folder on ``sys.path`` where tests create distributions while the host runs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.modules: list[str] = []

    def install(
        self,
        name: str,
        modules: Mapping[str, str],
        entry_points: Mapping[str, Mapping[str, str]],
        version: str = "1.0.0",
    ) -> None:
        """Create distribution ``name``: its modules and a dist-info with its entry points.

        The dist-info is written last, as an installer does, so discovery never sees an
        entry point whose module is not there yet.
        """
        for module, source in modules.items():
            (self.folder / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)
        info = self.folder / f"{name.replace('-', '_')}-{version}.dist-info"
        staging = self.folder / f".{info.name}.tmp"
        staging.mkdir()
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        (staging / "METADATA").write_text(metadata)
        lines: list[str] = []
        for group, points in entry_points.items():
            lines.append(f"[{group}]")
            lines.extend(f"{point} = {target}" for point, target in points.items())
        (staging / "entry_points.txt").write_text("\n".join(lines) + "\n")
        staging.rename(info)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SitePackages]:
    """A fresh ``sys.path`` folder; its modules and entry points are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    entry_points.refresh()
    packages = SitePackages(folder)
    try:
        yield packages
    finally:
        sys.path.remove(str(folder))
        for module in packages.modules:
            sys.modules.pop(module, None)
        entry_points.refresh()


def child_pids(pid: int | None = None) -> set[int]:
    """Return the children of ``pid`` (this process), zombies included: not reaped is stray."""
    pid = os.getpid() if pid is None else pid
    children: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return children
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                children.update(int(child) for child in listing.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
    return children


def descendants(pid: int | None = None) -> set[int]:
    """Return every process below ``pid``: children, grandchildren, ..."""
    found: set[int] = set()
    pending = [os.getpid() if pid is None else pid]
    while pending:
        for child in child_pids(pending.pop()) - found:
            found.add(child)
            pending.append(child)
    return found


def import_hostile_loaded() -> list[str]:
    """Return the hostile import-time modules in ``sys.modules`` (there must be none)."""
    return [module for module in IMPORT_HOSTILE if module in sys.modules]


def forget_hostile_modules() -> None:
    """Drop the hostile distribution's modules, so the next test module's guard passes.

    Its ``classes`` module (good, constructor-raises, contract 2, wrong base) imports fine
    and loads into the host by design when those plugins run in process.
    """
    for module in [m for m in sys.modules if m == HOSTILE or m.startswith(f"{HOSTILE}.")]:
        del sys.modules[module]
    entry_points.load_class.cache_clear()
