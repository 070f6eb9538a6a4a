"""``flowstone-host redrive RUN``: re-run only the failed items of a run's scatters."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import Subparsers, add_command, with_started_host

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    add_command(
        sub,
        "redrive",
        _redrive,
        help="re-run only the failed scatter items of a run, then finish the run",
        description=(
            "Move the failed items of every scatter of RUN back to pending (completed items\n"
            "keep their results, reused in the gather), then resume RUN in this process:\n"
            "each scatter reads its items again and runs only the retried ones. Fix the\n"
            "failing function first; redrive as many times as needed. Each redrive is\n"
            "recorded on the run (`flowstone-host runs show RUN`).\n\n"
            "Exit codes: 0 the run succeeded (or nothing failed), 1 it failed again,\n"
            "2 usage error (no such run, a run still running, a coordinator that cannot\n"
            "retry items)."
        ),
    ).add_argument("run_id", metavar="RUN", help="the run to redrive")


def _redrive(args: argparse.Namespace) -> int:
    from ..runtime.redrive import redrive
    from .materialize import _progress

    progress = _progress(sys.stdout)

    def work(host: Any) -> int:
        try:
            outcome = redrive(host, args.run_id, progress=progress)
        finally:
            progress.close()  # ends a progress bar before any error is printed
        return _report(args, outcome)

    return with_started_host(args, work)


def _report(args: argparse.Namespace, outcome: Any) -> int:
    if outcome.result is None:
        print(f"run {args.run_id}: nothing to redrive (no failed item)")
        return 0
    for where, count in outcome.retried.items():
        print(f"  {where}: {count} failed item(s) retried")
    result = outcome.result
    if result.ok:
        print(f"run {result.run_id} succeeded after redrive")
        return 0
    error = result.error
    assert error is not None
    print(f"run {result.run_id} failed again: [{error.code}] {error.message}", file=sys.stderr)
    return 1
