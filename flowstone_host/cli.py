"""The ``flowstone-host`` command line: one function per subcommand, argparse only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]

DEFAULT_CONFIG = "config/host.yaml"

Command = Callable[[argparse.Namespace], int]
Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_command(
    sub: Subparsers, name: str, func: Command, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func``, with the options every command shares."""
    parser = sub.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help=f"host config file (default: {DEFAULT_CONFIG})",
    )
    parser.set_defaults(func=func)
    return parser


def _add_run(sub: Subparsers) -> None:
    add_command(
        sub,
        "run",
        _run,
        help="run the host on its config (for now: a short demo of every contract)",
        description=(
            "Run the host in the foreground on --config. Until the daemon lands this runs a "
            "short demo that exercises every built-in contract end to end and prints what "
            "it did."
        ),
    )


def _run(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(print)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="flowstone-host",
        description="Host FlowStone plugins declared in YAML manifests.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_run,):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
