"""``flowstone-host run``: the daemon in the foreground."""

from __future__ import annotations

import argparse
import sys

from .common import Subparsers, add_command, add_log_options, host_config

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "run",
        _run,
        help="run the host daemon in the foreground",
        description=(
            "Run the host in the foreground (systemd style) on --config: load every manifest\n"
            "in the plugins folder, watch it and reload on change, serve the admin API\n"
            "(/healthz, /readyz, /status, /metrics, POST /reload) and log structured lines.\n"
            "SIGHUP reloads; SIGTERM or SIGINT stops cleanly (exit 0), a second one at once.\n"
            "A broken manifest is rejected and the rest still loads; an invalid host config\n"
            "exits 2 with its errors."
        ),
    )
    add_log_options(parser)
    parser.add_argument(
        "--admin-listen",
        metavar="HOST:PORT",
        help="override admin.listen from the host config; port 0 picks a free port",
    )


def _run(args: argparse.Namespace) -> int:
    from ..daemon.logs import configure_logging
    from ..daemon.runner import Daemon
    from ..errors import FlowStoneError

    configure_logging(args.log_format, args.log_level)
    try:
        daemon = Daemon(host_config(args), admin_listen=args.admin_listen)
    except FlowStoneError as exc:
        print(f"flowstone-host run: {exc.message}", file=sys.stderr)
        return 2
    try:
        return daemon.run()
    except FlowStoneError as exc:  # e.g. the admin port is taken
        print(f"flowstone-host run: {exc.message}", file=sys.stderr)
        return 1
