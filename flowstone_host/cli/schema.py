"""``flowstone-host schema``: the JSON Schema of manifests, for editors and CI."""

from __future__ import annotations

import argparse
import sys

from .common import Subparsers, add_command

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "schema",
        _schema,
        help="print the JSON Schema of manifests",
        description=(
            "Print the JSON Schema (Draft 2020-12) of one manifest document, or of one\n"
            "document of KIND, as one self-contained file for editors and CI tools."
        ),
    )
    parser.add_argument("kind", nargs="?", metavar="KIND", help="e.g. Asset, IOManager")


def _schema(args: argparse.Namespace) -> int:
    import json

    from ..errors import NotFound
    from ..manifest.schema import bundled_schema

    try:
        print(json.dumps(bundled_schema(args.kind), indent=2))
    except NotFound as exc:
        print(f"flowstone-host schema: error: {exc.message}", file=sys.stderr)
        return 2
    return 0
