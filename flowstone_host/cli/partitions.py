"""``flowstone-host partitions ASSET``: an asset's partitions, a page at a time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import Subparsers, add_command, with_started_host

__all__ = ["register"]

#: Default and largest page.
LIMIT = 100
MAX_LIMIT = 10_000


def register(sub: Subparsers) -> None:
    parser = add_command(
        sub,
        "partitions",
        _partitions,
        help="list an asset's partitions (or the missing ones), a page at a time",
        description=(
            "List the partitions of ASSET in order, --limit at a time: each as it is\n"
            "written on the command line (`materialize --partition`) and its canonical key.\n"
            "--missing lists only those its IO manager does not store. The last line on\n"
            "stderr says how to ask for the next page (--after LAST).\n\n"
            "Exit codes: 0 listed, 1 no such asset or partition, 2 usage error."
        ),
    )
    parser.add_argument("asset", metavar="ASSET", help="asset name")
    parser.add_argument("--missing", action="store_true", help="only partitions not stored")
    parser.add_argument(
        "--limit", type=int, default=LIMIT, metavar="N", help=f"page size (default {LIMIT})"
    )
    parser.add_argument("--after", metavar="KEY", help="start after this partition (or key)")
    parser.add_argument("--format", choices=["text", "json"], default="text")


def _partitions(args: argparse.Namespace) -> int:
    from ..runtime import partitioning

    if not 1 <= args.limit <= MAX_LIMIT:
        print(f"flowstone-host partitions: error: --limit is 1 to {MAX_LIMIT}", file=sys.stderr)
        return 2

    def work(host: Any) -> int:
        with host.lease() as snapshot:
            asset = snapshot.assets.resolve(args.asset)
            values = partitioning.page(
                snapshot, asset, after=args.after, limit=args.limit, only_missing=args.missing
            )
            total = None if asset.partitions is None else asset.partitions.count()
            rows = [_row(asset, value) for value in values]
        _print(args, rows, total)
        return 0

    return with_started_host(args, work, on_error=1)


def _row(asset: Any, value: Any) -> dict[str, str]:
    from ..partitions import partition_key
    from ..runtime import partitioning

    return {"partition": partitioning.spell(asset, value), "key": partition_key(value)}


def _print(args: argparse.Namespace, rows: list[dict[str, str]], total: int | None) -> None:
    last = rows[-1]["key"] if len(rows) == args.limit else None
    if args.format == "json":
        data = {"asset": args.asset, "partitions": rows, "count": total, "next_after": last}
        print(json.dumps(data, indent=2))
        return
    for row in rows:
        print(f"{row['partition']}\t{row['key']}")
    what = "missing partition(s)" if args.missing else "partition(s)"
    of = f" of {total}" if total is not None and not args.missing else ""
    more = f"; next page: --after {last}" if last is not None else ""
    print(f"{len(rows)} {what}{of}{more}", file=sys.stderr)
