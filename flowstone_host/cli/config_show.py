"""``flowstone-host config show``: the merged, redacted config of a declaration or asset."""

from __future__ import annotations

import argparse
import sys

from .common import Subparsers, add_command, host_config

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "config",
        _config_show,
        help="show the merged, redacted config of a declaration or asset",
        description=(
            "config show [NAME] [--kind KIND] | --asset ASSET [--explain]\n\n"
            "Print the config a declaration or asset would get: plugin defaults, then\n"
            "spec.config (and overlays), then the asset's override. Secrets and values\n"
            "from the environment are redacted. --explain names the layer of each key."
        ),
    )
    parser.add_argument("action", choices=["show"])
    parser.add_argument("name", nargs="?", help="declaration name (all when absent)")
    parser.add_argument("--kind", help="declaration kind, when NAME is used by several")
    parser.add_argument("--asset", help="show the IO (and reader) config of this asset")
    parser.add_argument("--explain", action="store_true", help="say which layer set each key")


def _config_show(args: argparse.Namespace) -> int:
    from ..errors import FlowStoneError
    from ..loading.catalog import installed
    from ..manifest.explain import show_config
    from ..manifest.validate import load_manifests

    try:
        host = host_config(args)
        catalog = installed(host)
        report = load_manifests(host, catalog=catalog)
    except FlowStoneError as exc:
        print(f"flowstone-host config: error: {exc.message}", file=sys.stderr)
        return 2
    try:
        options = {"kind": args.kind, "asset": args.asset, "explain": args.explain}
        print(show_config(report, args.name, catalog=catalog, **options))
    except FlowStoneError as exc:
        print(f"flowstone-host config: error: {exc.message}", file=sys.stderr)
        return 1
    return 0
