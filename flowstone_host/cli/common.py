"""What every subcommand shares: the ``--config`` option and reading the host config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeAlias

__all__ = [
    "DEFAULT_CONFIG",
    "Command",
    "Subparsers",
    "add_command",
    "add_log_options",
    "host_config",
    "read_manifests",
    "with_started_host",
]

DEFAULT_CONFIG = "config/host.yaml"

Command = Callable[[argparse.Namespace], int]
# A string: argparse._SubParsersAction is not subscriptable at runtime before Python 3.12.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


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


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--log-format`` and ``--log-level``, for the commands that run until stopped."""
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text: readable lines (default); json: one JSON object per line",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING, ERROR")


def host_config(args: argparse.Namespace) -> Any:
    """Read ``--config``; the built-in defaults when the default path does not exist."""
    from pathlib import Path

    from ..manifest.host_config import HostConfig, read_host_config

    if args.config == DEFAULT_CONFIG and not Path(DEFAULT_CONFIG).exists():
        return HostConfig.defaults()
    return read_host_config(args.config)


def read_manifests(args: argparse.Namespace) -> Any:
    """Return ``(host config, validation report)`` of ``args.paths`` (default: the plugins
    folder and overlays), or ``None`` after printing why they cannot be read."""
    from ..errors import FlowStoneError
    from ..loading.catalog import installed
    from ..manifest.validate import load_manifests, validate_paths

    try:
        host = host_config(args)
        catalog = installed(host)
        if args.paths:
            return host, validate_paths(args.paths, host, catalog=catalog)
        return host, load_manifests(host, catalog=catalog)
    except FlowStoneError as exc:
        print(f"flowstone-host {args.command}: error: {exc.message}", file=sys.stderr)
        return None


def with_started_host(
    args: argparse.Namespace, work: Callable[[Any], int], *, on_error: int = 2
) -> int:
    """Start a host on ``--config``, return ``work(host)``'s exit code, stop the host.

    A host config that cannot be read exits 2; a ``FlowStoneError`` from the first load or
    from ``work`` is printed as ``flowstone-host COMMAND: error: ...`` and exits
    ``on_error``. A first load that rejected files only warns: the rest may serve.
    """
    from ..errors import FlowStoneError
    from ..host.lifecycle import Host

    try:
        host = Host(host_config(args))
    except FlowStoneError as exc:
        print(f"flowstone-host {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    try:
        report = host.start()
        if report.outcome in ("partial", "error"):
            print(f"warning: {report.summary()}", file=sys.stderr)
        return work(host)
    except FlowStoneError as exc:
        print(f"flowstone-host {args.command}: error: {exc.message}", file=sys.stderr)
        return on_error
    finally:
        host.stop(grace_s=0)
