"""``flowstone-host materialize``: one run of some assets, in this process, with progress."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from .common import Subparsers, add_command, with_started_host

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "materialize",
        _materialize,
        help="materialize assets (and what they read) once, then exit",
        description=(
            "Materialize ASSET and every asset it reads that is not stored yet, in this\n"
            "process, on the host config's plugins. The run is recorded in the state folder\n"
            "(`flowstone-host runs`). If an unfinished run of the same assets and partitions\n"
            "exists (killed, or failed), it is resumed: finished scatter items are skipped.\n\n"
            "Partitions: all of them by default (a page at a time), --partition P ...,\n"
            "--partition-range FIRST..LAST, and/or --missing (a backfill of those not stored\n"
            "yet); --concurrency N runs N partitions at once. A killed backfill started\n"
            "again resumes: finished partitions are found stored and skipped.\n\n"
            "Exit codes: 0 the run succeeded, 1 it failed, 2 usage error."
        ),
    )
    parser.add_argument("assets", nargs="+", metavar="ASSET", help="asset names")
    parser.add_argument(
        "--partition", action="append", metavar="P", help="a partition (repeatable; default all)"
    )
    parser.add_argument(
        "--partition-range",
        metavar="A..B",
        help="the partitions from A to B, both included (A.. or ..B: open)",
    )
    parser.add_argument(
        "--missing", action="store_true", help="only the partitions not stored yet (backfill)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="partitions run at once"
    )
    parser.add_argument("--force", action="store_true", help="materialize stored assets again")
    parser.add_argument("--fresh", action="store_true", help="start a new run, never resume")
    parser.add_argument("--run-id", metavar="ID", help="name the run; an existing one resumes")


def _materialize(args: argparse.Namespace) -> int:
    from ..runtime import materialize

    if args.fresh and args.run_id:
        print(
            "flowstone-host materialize: error: --fresh and --run-id exclude each other",
            file=sys.stderr,
        )
        return 2
    if args.partition and (args.partition_range or args.missing):
        print(
            "flowstone-host materialize: error: --partition excludes --partition-range and "
            "--missing",
            file=sys.stderr,
        )
        return 2
    if args.concurrency < 1:
        print("flowstone-host materialize: error: --concurrency is at least 1", file=sys.stderr)
        return 2
    progress = _progress(sys.stdout)

    def work(host: Any) -> int:
        try:
            result = materialize(
                host,
                args.assets,
                args.partition,
                partition_range=args.partition_range,
                missing=args.missing,
                concurrency=args.concurrency,
                force=args.force,
                fresh=args.fresh,
                run_id=args.run_id,
                progress=progress,
            )
        finally:
            progress.close()  # ends a progress bar before any error is printed
        return _report(result)

    return with_started_host(args, work)


def _report(result: Any) -> int:
    if result.ok:
        done = f" ({result.partitions} partition(s))" if result.partitions > 1 else ""
        print(f"run {result.run_id} succeeded{done}")
        return 0
    error = result.error
    print(f"run {result.run_id} failed: [{error.code}] {error.message}", file=sys.stderr)
    return 1


def _progress(stream: TextIO) -> Any:
    from ..runtime.progress import Progress

    class Lines(Progress):
        """Plain lines: one per step, and scatter counts at most once a second."""

        def __init__(self) -> None:
            self.shown = 0.0

        def run_started(self, run_id: str, resumed: bool, attempts: int) -> None:
            verb = f"resuming run {run_id} (attempt {attempts})" if resumed else f"run {run_id}"
            print(verb, file=stream, flush=True)

        def step_finished(self, asset: str, partition: Any, status: str) -> None:
            where = asset if partition is None else f"{asset} [{partition}]"
            print(f"  {where}: {status}", file=stream, flush=True)

        def scatter(
            self, asset: str, partition: Any, done: int, failed: int, total: int | None
        ) -> None:
            if time.monotonic() - self.shown >= 1.0:
                self.shown = time.monotonic()
                of = f"/{total}" if total is not None else ""
                print(f"  {asset}: {done}{of} done, {failed} failed", file=stream, flush=True)

        def close(self) -> None:
            pass

    if stream.isatty():
        from ._rich_progress import RichProgress

        return RichProgress(Lines)
    return Lines()
