"""Run every benchmark module (``bench/bench_*.py``) and print ratios against raw floors.

Usage: ``python -m bench [NAME ...]`` (``make bench``). Exit 1 when a target is missed.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    ok = True
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        ok = module.main() and ok
    print("\nall targets met" if ok else "\nsome targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
