"""The ``flowstone-host`` command line: one module per subcommand, argparse only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import (
    check,
    config_show,
    daemon_client,
    materialize,
    new_plugin,
    partitions,
    plugins,
    redrive,
    run,
    runs,
    schema,
    validate,
    worker,
)
from .common import Command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="flowstone-host",
        description="Host FlowStone plugins declared in YAML manifests.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in (
        run.register,
        validate.register,
        check.register,
        schema.register,
        plugins.register,
        config_show.register,
        daemon_client.register_status,
        daemon_client.register_reload,
        materialize.register,
        runs.register,
        redrive.register,
        partitions.register,
        worker.register,
        new_plugin.register,
    ):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
