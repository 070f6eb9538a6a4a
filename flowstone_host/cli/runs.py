"""``flowstone-host runs``: the runs recorded in the state folder (no daemon needed)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from .common import Subparsers, add_command, host_config

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "runs",
        _runs,
        help="list recorded runs, or show one (`runs show ID`)",
        description=(
            "List the runs recorded in the host config's state folder, newest first, or\n"
            "show one run with its steps. Reads the files directly: no daemon needed.\n\n"
            "Exit codes: 0 shown, 1 no such run, 2 usage error."
        ),
    )
    parser.add_argument("action", nargs="?", choices=["show"], help="show one run")
    parser.add_argument("run_id", nargs="?", metavar="ID")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="runs to list")
    parser.add_argument("--format", choices=["text", "json"], default="text")


def _runs(args: argparse.Namespace) -> int:
    from ..errors import FlowStoneError
    from ..runtime.records import RunRecords

    if args.action == "show" and not args.run_id:
        print("flowstone-host runs show: error: give a run ID", file=sys.stderr)
        return 2
    try:
        records = RunRecords.in_state_dir(host_config(args).state_dir)
    except FlowStoneError as exc:
        print(f"flowstone-host runs: error: {exc.message}", file=sys.stderr)
        return 2
    try:
        if args.action == "show":
            return _show(records, args.run_id, args.format)
        return _list(records, args.limit, args.format)
    finally:
        records.close()


def _list(records: Any, limit: int, form: str) -> int:
    runs = records.list(limit)
    if form == "json":
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        print("no runs recorded")
    for r in runs:
        what = ",".join(r.assets) + (f" [{','.join(r.partitions)}]" if r.partitions else "")
        error = f"  {r.error['code']}: {r.error['message'][:60]}" if r.error else ""
        print(f"{r.run_id}  {r.status:<9}  {_when(r.created_at)}  {r.user or '-'}  {what}{error}")
    return 0


def _show(records: Any, run_id: str, form: str) -> int:
    run = records.find(run_id)
    if run is None:
        print(f"flowstone-host runs show: no run {run_id!r}", file=sys.stderr)
        return 1
    if form == "json":
        print(json.dumps(run.to_dict(), indent=2))
        return 0
    print(f"run {run.run_id}: {run.status} (attempts: {run.attempts})")
    print(f"  by {run.user or '-'} on {run.host} (pid {run.pid}), started {_when(run.created_at)}")
    if run.finished_at:
        print(f"  finished {_when(run.finished_at)}")
    if run.error:
        print(f"  error [{run.error['code']}]: {run.error['message']}")
    for step in run.steps:
        counts = {k: step.details[k] for k in ("completed", "failed", "total") if k in step.details}
        extra = f"  {counts}" if counts else ""
        print(f"  {step.asset} [{step.partition}]: {step.status}{extra}")
    return 0


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")
