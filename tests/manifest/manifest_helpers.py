"""Shared paths for the manifest tests."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "manifests"
GOOD = FIXTURES / "good"
BAD = FIXTURES / "bad"


def expectation(path: Path) -> tuple[int, int, str, str]:
    """Read a bad fixture's ``# expect: LINE:COL CODE | MESSAGE FRAGMENT`` first line."""
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    place, rest = first.removeprefix("# expect: ").split(" ", 1)
    code, fragment = rest.split(" | ", 1)
    line, column = place.split(":")
    return int(line), int(column), code, fragment
