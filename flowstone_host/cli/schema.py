"""``flowstone-host schema``: the JSON Schema of manifests, for editors and CI."""

from __future__ import annotations

import argparse
import sys
from typing import Any

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
            "document of KIND, as one self-contained file for editors and CI tools.\n"
            "With --installed, each installed plugin's config_schema checks spec.config\n"
            "(each plugin read in a probe process, never in this one): point a manifest's\n"
            "'# yaml-language-server: $schema=FILE' line or check-jsonschema at the file."
        ),
    )
    parser.add_argument("kind", nargs="?", metavar="KIND", help="e.g. Asset, IOManager")
    parser.add_argument(
        "--installed",
        action="store_true",
        help="check spec.config with the installed plugins' config schemas",
    )
    parser.add_argument("--output", metavar="FILE", help="write the schema to FILE")


def _schema(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..errors import FlowStoneError
    from ..manifest.schema import bundled_schema

    try:
        if args.installed and args.kind:
            print("flowstone-host schema: error: --installed takes no KIND", file=sys.stderr)
            return 2
        schema = _installed(args) if args.installed else bundled_schema(args.kind)
    except FlowStoneError as exc:
        print(f"flowstone-host schema: error: {exc.message}", file=sys.stderr)
        return 2
    text = json.dumps(schema, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"Wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _installed(args: argparse.Namespace) -> dict[str, Any]:
    from ..loading.catalog import installed
    from ..manifest.installed_schema import installed_schema
    from .common import host_config

    return installed_schema(installed(host_config(args)))
