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
    "host_config",
    "read_manifests",
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
