"""``flowstone-host worker``: run queued scatter chunks and branches until SIGTERM."""

from __future__ import annotations

import argparse
import sys

from .common import Subparsers, add_command, add_log_options, host_config

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "worker",
        _worker,
        help="run queued scatter items and branches (queue executor) until SIGTERM",
        description=(
            "Serve the job queue of a queue executor (plugin: procrastinate, extra\n"
            "'distributed'): load the same manifests as the host on --config, reload them\n"
            "on change or SIGHUP, and run scatter chunks and parallel branches that\n"
            "`flowstone-host materialize` (or the daemon) queued, recording their outcomes\n"
            "in the asset's coordinators. Start any number of workers on any number of\n"
            "machines against one database. SIGTERM or SIGINT stops taking jobs; jobs in\n"
            "hand get shutdown.grace_s to finish, then go back to the queue; exit 0."
        ),
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=1,
        metavar="N",
        help="jobs this worker runs at once (default 1)",
    )
    parser.add_argument(
        "--queues",
        nargs="+",
        metavar="QUEUE",
        help="queue names to serve (default: the executor's `queue`)",
    )
    parser.add_argument(
        "--executor",
        default="default",
        metavar="NAME",
        help="the queue executor declaration to serve (default: default)",
    )
    add_log_options(parser)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"must be from 1 to 1024, got {value}")
    return value


def _worker(args: argparse.Namespace) -> int:
    from ..daemon.logs import configure_logging
    from ..daemon.worker import Worker
    from ..errors import FlowStoneError

    configure_logging(args.log_format, args.log_level)
    try:
        worker = Worker(
            host_config(args),
            executor=args.executor,
            concurrency=args.concurrency,
            queues=args.queues,
        )
    except FlowStoneError as exc:
        print(f"flowstone-host worker: {exc.message}", file=sys.stderr)
        return 2
    try:
        return worker.run()
    except FlowStoneError as exc:
        print(f"flowstone-host worker: {exc.message}", file=sys.stderr)
        return 2
