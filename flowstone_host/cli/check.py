"""``flowstone-host check``: load, set up, health-check and tear down every declaration.

Each declaration goes through the same loader and health check as in the daemon, one at a
time, and is torn down again before the next; nothing stays running. One line per
declaration says what happened.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import FlowStoneError
from ..host.health import HealthChecker
from ..loading import entry_points
from ..loading.loader import PluginLoader, teardown_entry
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

    A declaration whose plugin could not even be read (``manifests.unloadable``) is
    reported as failed with the reason, in its place.
    """
    loadable = [(d, None) for d in manifests.declarations.values()]
    everything = sorted([*loadable, *manifests.unloadable.values()], key=lambda p: _place(p[0]))
    for declaration, unloadable in everything:
        if unloadable is not None:
            facts = entry_points.provenance(declaration.namespace, declaration.plugin)
            yield CheckResult(
                declaration, "failed", unloadable, facts.get("distribution"), facts.get("version")
            )
            continue
        try:
            entry = loader.load(declaration)
        except FlowStoneError as exc:
            context = exc.context
            yield CheckResult(
                declaration,
                "failed",
                exc.message,
                context.get("distribution"),
                context.get("version"),
            )
            continue
        try:
            result = health.check(entry)
        finally:
            teardown_entry(entry)
        meta = entry.metadata
        state, reason = "ok", ""
        if result is not None and not result.healthy:
            state, reason = "unhealthy", result.reason or "unhealthy"
        yield CheckResult(declaration, state, reason, meta.get("distribution"), meta.get("version"))


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
