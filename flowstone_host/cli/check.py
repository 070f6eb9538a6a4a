"""``flowstone-host check``: load, set up, health-check and tear down every declaration.

Each declaration goes through the same loader and health check as in the daemon, one at a
time, and is torn down again before the next, except the resources others depend on: they
are brought up first and stay up for their dependents until the end. Nothing stays running
afterwards. One line per declaration says what happened.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import FlowStoneError
from ..host.health import HealthChecker
from ..host.report import capped
from ..kinds import Kind
from ..loading import entry_points
from ..loading.entry import Entry
from ..loading.loader import PluginLoader
from ..manifest.model import Declaration, ManifestSet
from .common import Subparsers, add_command, read_manifests

__all__ = ["CheckResult", "check_declarations", "register"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What checking one declaration found."""

    declaration: Declaration
    state: str  # "ok", "unhealthy" or "failed"
    reason: str = ""
    distribution: str | None = None
    version: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def to_text(self) -> str:
        """Return the one line ``check`` prints."""
        d = self.declaration
        dist = f"{self.distribution or '?'} {self.version or '?'}"
        # a loader's reason names the declaration's source already: say it once
        where = f"  ({d.source})" if d.source and str(d.source) not in self.reason else ""
        reason = f": {self.reason}" if self.reason else ""
        columns = f"{self.state.upper():<9} {d.kind:<19} {d.name:<20} {d.plugin:<16} {dist:<24}"
        return f"{columns}{reason}{where}"


def check_declarations(
    manifests: ManifestSet, loader: PluginLoader, health: HealthChecker
) -> Iterator[CheckResult]:
    """Yield the result of loading, checking and tearing down each declaration in order.

    The resources a declaration ``depends_on`` are brought up first (checked in their
    turn, ahead of it if they come later) and passed to it set up, as the daemon does; they
    stay up until the check ends, then are torn down, newest first. A declaration whose
    plugin could not even be read (``manifests.unloadable``) is reported as failed with the
    reason, in its place.
    """
    loadable = [(d, None) for d in manifests.declarations.values()]
    everything = sorted([*loadable, *manifests.unloadable.values()], key=lambda p: _place(p[0]))
    run = _CheckRun(manifests, loader, health)
    try:
        for declaration, unloadable in everything:
            if unloadable is not None:
                facts = entry_points.provenance(declaration.namespace, declaration.plugin)
                distribution, version = facts.get("distribution"), facts.get("version")
                yield CheckResult(declaration, "failed", unloadable, distribution, version)
                continue
            yield run.check(declaration, ())
    finally:
        run.close()


class _CheckRun:
    """One ``check``: results by declaration, and the resources kept up for dependents."""

    def __init__(self, manifests: ManifestSet, loader: PluginLoader, health: HealthChecker):
        self.manifests, self.loader, self.health = manifests, loader, health
        self.needed = {n for d in manifests.declarations.values() for n in d.depends_on}
        self.results: dict[tuple[str, str], CheckResult] = {}
        self.up: dict[str, Entry] = {}  # resources set up for their dependents, by name

    def check(self, declaration: Declaration, chain: tuple[tuple[str, str], ...]) -> CheckResult:
        key = (declaration.kind, declaration.name)
        if key not in self.results:
            self.results[key] = self._check(declaration, (*chain, key))
        return self.results[key]

    def _check(self, declaration: Declaration, chain: tuple[tuple[str, str], ...]) -> CheckResult:
        handles: dict[str, Any] = {}
        for name in declaration.depends_on:
            problem = self._bring_up(name, chain)
            if problem:
                reason = f"it depends on resource {name!r}, which is not set up ({problem})"
                facts = entry_points.provenance(declaration.namespace, declaration.plugin)
                return CheckResult(
                    declaration, "failed", reason, facts.get("distribution"), facts.get("version")
                )
            handles[name] = self.up[name].handle
        try:
            entry = self.loader.load(declaration, handles)
        except FlowStoneError as exc:
            context = exc.context
            return CheckResult(
                declaration,
                "failed",
                capped(exc.message),
                context.get("distribution"),
                context.get("version"),
            )
        keep = declaration.kind == Kind.RESOURCE and declaration.name in self.needed
        try:
            result = self.health.check(entry)
        finally:
            if keep:
                self.up[declaration.name] = entry
            else:
                self.loader.teardown(entry)
        meta = entry.metadata
        state, reason = "ok", ""
        if result is not None and not result.healthy:
            state, reason = "unhealthy", result.reason or "unhealthy"
        distribution, version = meta.get("distribution"), meta.get("version")
        return CheckResult(declaration, state, reason, distribution, version)

    def _bring_up(self, name: str, chain: tuple[tuple[str, str], ...]) -> str | None:
        """Set up resource ``name`` if it is not up; return why it is not, or ``None``."""
        if name in self.up:
            return None
        key = (Kind.RESOURCE, name)
        target = self.manifests.declarations.get(key)
        if target is None:
            unloadable = self.manifests.unloadable.get(key)
            return unloadable[1] if unloadable else "it is not declared"
        if key in chain:
            return "it depends on this one in turn"
        result = self.check(target, chain)
        if name in self.up:
            return None
        return result.reason or result.state

    def close(self) -> None:
        """Tear down the resources kept up for their dependents, newest first."""
        for entry in reversed(list(self.up.values())):
            self.loader.teardown(entry)
        self.up.clear()


def _place(declaration: Declaration) -> tuple[str, int]:
    source = declaration.source
    return (source.file, source.line) if source else ("", 0)


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "check",
        _check,
        help="load, set up, health-check and tear down every declaration",
        description=(
            "Load every plugin declaration the way the daemon would (sandbox policy, import\n"
            "probe, version checks, constructor, resource setup), health-check it and tear it\n"
            "down again, printing one line per declaration. With no PATH, read the host\n"
            "config's plugins folder and its overlays.\n\n"
            "Exit codes: 0 all good, 1 any manifest invalid or declaration failed or\n"
            "unhealthy, 2 usage error."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="manifest files or folders")


def _check(args: argparse.Namespace) -> int:
    from ..host.health import HealthChecker
    from ..loading.loader import PluginLoader
    from ..manifest.plugin_config import UNLOADABLE

    read = read_manifests(args)
    if read is None:
        return 2
    host, report = read
    for issue in report.issues:
        if issue.code not in UNLOADABLE:  # those get a FAILED line of their own below
            print(issue.to_text())
    health = HealthChecker(list, None, host.health.timeout_s)
    failed = 0
    for result in check_declarations(report.manifests, PluginLoader.for_host(host), health):
        print(result.to_text(), flush=True)
        failed += not result.ok
    total = len(report.manifests.declarations) + len(report.manifests.unloadable)
    errors = sum(issue.code not in UNLOADABLE for issue in report.issues)
    print(f"{total - failed} of {total} declaration(s) OK; {errors} manifest error(s)")
    return 0 if report.ok and not failed else 1
