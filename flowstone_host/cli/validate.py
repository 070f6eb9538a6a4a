"""``flowstone-host validate``: check manifests without running any plugin."""

from __future__ import annotations

import argparse

from .common import Subparsers, add_command, read_manifests

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "validate",
        _validate,
        help="check manifests: shape, cross-references and plugin config",
        description=(
            "Check manifest files and folders as one set, without running any plugin.\n"
            "With no PATH, read the host config's plugins folder and its overlays.\n\n"
            "Exit codes: 0 valid, 1 invalid, 2 usage error (bad option, missing path,\n"
            "invalid host config)."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="manifest files or folders")
    parser.add_argument("--format", choices=["text", "json"], default="text")


def _validate(args: argparse.Namespace) -> int:
    read = read_manifests(args)
    if read is None:
        return 2
    _, report = read
    print(report.to_json() if args.format == "json" else report.to_text())
    return 0 if report.ok else 1
