"""``flowstone-host runs``: recorded runs, from the running daemon or the state folder."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from .common import Subparsers, add_command, host_config
from .daemon_client import TOKEN_ENV

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "runs",
        _runs,
        help="list recorded runs, show one (`runs show ID`) or cancel one (`runs cancel ID`)",
        description=(
            "List the runs recorded in the host config's state folder, newest first, a page\n"
            "at a time (--limit, then --after the last ID shown), or show one run with its\n"
            "steps, or cancel a run the daemon executes. When a daemon runs on this config\n"
            "(its address is in state_dir/daemon.json), it is asked (GET /runs, GET\n"
            "/runs/ID, POST /runs/ID/cancel: that one with the admin token when one is set);\n"
            "otherwise, or with --local, the state folder is read directly.\n\n"
            "`runs retune ID --max-concurrency N --tolerate 5%|N` changes the scatters of a\n"
            "run while it runs (recorded in the state folder, which the running process\n"
            "polls: applied within one batch, and to later resumes and redrives).\n\n"
            "Exit codes: 0 shown, 1 no such run (or the daemon refused), 2 usage error."
        ),
    )
    parser.add_argument(
        "action", nargs="?", choices=["show", "cancel", "retune"], help="what to do"
    )
    parser.add_argument("run_id", nargs="?", metavar="ID")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="runs to list")
    parser.add_argument("--after", metavar="ID", help="list the runs older than run ID")
    parser.add_argument("--status", help="only runs with this status (running, failed, ...)")
    parser.add_argument("--asset", help="only runs that target this asset")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--local", action="store_true", help="read the state folder, not a daemon")
    parser.add_argument("--admin", metavar="URL", help="the daemon's admin API (default: found)")
    parser.add_argument("--token", help=f"admin token for cancel (default: ${TOKEN_ENV})")
    parser.add_argument(
        "--max-concurrency", type=int, metavar="N", help="retune: scatter items run at once"
    )
    parser.add_argument(
        "--tolerate", metavar="5%%|N", help="retune: tolerated failed items (percent or count)"
    )


def _runs(args: argparse.Namespace) -> int:
    if args.action == "retune" and args.run_id:
        return _retune(args)
    return _query(args)


def _query(args: argparse.Namespace) -> int:
    from ..errors import FlowStoneError

    if args.action is not None and not args.run_id:
        print(f"flowstone-host runs {args.action}: error: give a run ID", file=sys.stderr)
        return 2
    try:
        client = None if args.local else _daemon(args)
        if args.action == "cancel":
            if client is None:
                print("flowstone-host runs cancel: error: no daemon runs here", file=sys.stderr)
                return 2
            status, document = _ask(client, "POST", f"/runs/{args.run_id}/cancel")
        elif client is not None:
            status, document = _ask(client, "GET", _path(args))
        else:
            status, document = _read(args)
    except FlowStoneError as exc:
        print(f"flowstone-host runs: error: {exc.message}", file=sys.stderr)
        return 2 if exc.code in ("validation_error", "config_error") else 1
    if status >= 300:
        print(f"flowstone-host runs: {document['error']['message']}", file=sys.stderr)
        return 1 if status in (404, 409) else 2
    if args.format == "json":
        print(json.dumps(document, indent=2))
    elif args.action == "show":
        _show(document)
    elif args.action == "cancel":
        print(f"run {document['run_id']}: {document['status']}")
    else:
        _list(document)
    return 0


def _daemon(args: argparse.Namespace) -> Any:
    """Return a client of the daemon running on this config, or ``None`` when none runs."""
    import os

    from ..daemon.address_file import read_address
    from ..daemon.client import AdminClient

    token = args.token or os.environ.get(TOKEN_ENV)
    if args.admin:
        return AdminClient(args.admin, token=token)
    config = host_config(args)
    found = read_address(config.state_dir)
    if found is None or not found.alive:
        return None
    return AdminClient(found.url, token=token or config.admin.token or None)


def _path(args: argparse.Namespace) -> str:
    from urllib.parse import quote, urlencode

    if args.action == "show":
        return f"/runs/{quote(args.run_id, safe='')}"
    query = {"limit": args.limit, "after": args.after, "status": args.status, "asset": args.asset}
    return "/runs?" + urlencode({k: v for k, v in query.items() if v is not None})


def _ask(client: Any, method: str, path: str) -> tuple[int, dict[str, Any]]:
    reply = client.post(path) if method == "POST" else client.get(path)
    return reply.status, reply.body


def _read(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """The same documents as the daemon's, from the state folder."""
    from ..daemon.run_documents import run_document, runs_page
    from ..errors import NotFound
    from ..runtime.records import RunRecords

    records = RunRecords.in_state_dir(host_config(args).state_dir)
    try:
        if args.action == "show":
            return 200, run_document(records, args.run_id)
        page = runs_page(
            records, limit=args.limit, after=args.after, status=args.status, asset=args.asset
        )
        return 200, page
    except NotFound as exc:
        return 404, {"error": exc.to_dict()}
    finally:
        records.close()


def _list(page: dict[str, Any]) -> None:
    if not page["runs"]:
        print("no runs recorded")
    for r in page["runs"]:
        parts = r.get("partitions")
        what = ",".join(r["assets"]) + (f" [{','.join(parts)}]" if parts else "")
        error = f"  {r['error']['code']}: {r['error']['message'][:60]}" if r.get("error") else ""
        when = _when(r["created_at"])
        print(f"{r['run_id']}  {r['status']:<9}  {when}  {r.get('user') or '-'}  {what}{error}")
    if page.get("next"):
        print(f"(more: --after {page['next']})")


def _queue(queue: dict[str, Any]) -> str:
    """A queued scatter's line: where its items are, and which worker holds how many."""
    held = ", ".join(f"worker {w}: {n}" for w, n in sorted(queue.get("workers", {}).items()))
    return (
        f"queue: {queue.get('queued', 0)} queued, {queue.get('running', 0)} running"
        f"{f' ({held})' if held else ''}, {queue.get('done', 0)} done, "
        f"{queue.get('failed', 0)} failed"
    )


def _show(run: dict[str, Any]) -> None:
    print(f"run {run['run_id']}: {run['status']} (attempts: {run.get('attempts', 0)})")
    if "created_at" in run:
        print(
            f"  by {run.get('user') or '-'} on {run.get('host')} (pid {run.get('pid')}), "
            f"started {_when(run['created_at'])}"
        )
    if run.get("finished_at"):
        print(f"  finished {_when(run['finished_at'])}")
    if run.get("error"):
        print(f"  error [{run['error']['code']}]: {run['error']['message']}")
    for step in run.get("steps", []):
        extra = f"  {step['scatter']}" if "scatter" in step else ""
        print(f"  {step['asset']} [{step['partition']}]: {step['status']}{extra}")
        if step.get("queue") and step["status"] == "running":
            print(f"    {_queue(step['queue'])}")
    if run.get("steps_next") is not None:
        print(f"  ... {run['steps_total'] - run['steps_next']} more step(s)")
    for redrive in run.get("redrives", []):
        scatters = ", ".join(f"{w}: {n}" for w, n in redrive.get("scatters", {}).items())
        error = redrive.get("error")
        why = f" [{error['code']}] {error['message'][:60]}" if error else ""
        print(
            f"  redrive {_when(redrive['at'])}: {redrive.get('keys_retried', 0)} key(s) "
            f"retried ({scatters or 'none'}): {redrive.get('outcome')}{why}"
        )
    for retune in run.get("retunes", []):
        changes = {k: retune[k] for k in ("max_concurrency", "tolerated_failures") if k in retune}
        print(f"  retune {_when(retune['at'])}: {changes}")


def _retune(args: argparse.Namespace) -> int:
    from ..errors import FlowStoneError, NotFound
    from ..runtime.records import RunRecords
    from ..runtime.redrive import parse_tolerated, retune

    try:
        tolerated = None if args.tolerate is None else parse_tolerated(args.tolerate)
        records = RunRecords.in_state_dir(host_config(args).state_dir)
    except FlowStoneError as exc:
        print(f"flowstone-host runs retune: error: {exc.message}", file=sys.stderr)
        return 2
    try:
        event = retune(
            records, args.run_id, max_concurrency=args.max_concurrency, tolerated_failures=tolerated
        )
    except NotFound:
        print(f"flowstone-host runs retune: no run {args.run_id!r}", file=sys.stderr)
        return 1
    except FlowStoneError as exc:
        print(f"flowstone-host runs retune: error: {exc.message}", file=sys.stderr)
        return 2
    finally:
        records.close()
    changes = {k: event[k] for k in ("max_concurrency", "tolerated_failures") if k in event}
    when = (
        "its scatters apply it within one batch"
        if event["run_status"] == "running"
        else f"it is {event['run_status']}: applies when it resumes or is redriven"
    )
    print(f"run {args.run_id} retuned {changes}; {when}")
    return 0


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")
