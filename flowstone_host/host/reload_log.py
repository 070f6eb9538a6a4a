"""The reload log: a line per reload, per change and per rejected file, and the news a
reload brings beyond its changes (a file accepted again, an upgrade a restart would run)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .report import DeclarationState, ReloadReport, installed_version

__all__ = ["log_reload_news", "log_report"]

log = logging.getLogger("flowstone_host.host.lifecycle")  # the host's log, as it has been


def log_report(report: ReloadReport) -> None:
    """One line per reload (DEBUG when nothing changed), one per change, one per error."""
    facts = {"trigger": report.trigger, "outcome": report.outcome, "generation": report.generation}
    log.log(
        logging.DEBUG if report.outcome == "unchanged" else logging.INFO,
        report.summary(),
        extra=facts,
    )
    for change in report.changes:
        if change.action not in ("reused", "failed"):  # failures are logged where they happen
            fields = {
                "plugin_kind": change.kind,
                "declaration": change.name,
                "action": change.action,
            }
            log.info("%s %r %s", change.kind, change.name, change.action, extra=fields)
    for file, issues in report.rejected_files.items():
        for issue in issues:
            log.warning(
                "%s (the file keeps its last good version)",
                issue.to_text(),
                extra={"file": file, "code": issue.code},
            )


#: ``(kind, name, installed version)`` already warned about: one warning per upgrade.
_WARNED: set[tuple[str, str, str]] = set()


def log_reload_news(
    states: Iterable[DeclarationState],
    rejected_before: Mapping[str, Any],
    rejected_now: Mapping[str, Any],
) -> None:
    """Log what a reload changed beyond its changes: a rejected file accepted again (one
    line each), and entries whose installed distribution is newer than the code they run
    (a warning, once per upgrade)."""
    for file in rejected_before:
        if file not in rejected_now:
            log.info("%s is accepted again; its rejection is cleared.", file, extra={"file": file})
    for state in states:
        if state.entry is None or not (installed := installed_version(state.entry)):
            continue
        key = (state.kind, state.name, installed)
        if key in _WARNED:
            continue
        _WARNED.add(key)
        running = state.entry.metadata.get("version")
        how = "isolated process" if state.entry.metadata.get("isolation") == "process" else "host"
        log.warning(
            "%s %r: %s %s is installed but %s runs; restart the %s to run the new version "
            "(/status says restart_required).",
            state.kind,
            state.name,
            state.entry.metadata.get("distribution"),
            installed,
            running,
            how,
            extra={"plugin_kind": state.kind, "declaration": state.name},
        )
