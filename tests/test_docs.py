"""The README and docs/ say what the code does: defaults, commands and links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowstone_host.cli.main import build_parser
from flowstone_host.manifest.host_config import HostConfig

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _text() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def test_every_documented_debounce_default_is_the_schema_s() -> None:
    default = HostConfig.defaults().reload.debounce_ms
    found = re.findall(r"debounce[^.]*?(\d+) ms by default", _text(), flags=re.S)
    assert found, "no page states the debounce default"
    assert set(found) == {str(default)}


def test_the_documented_admin_address_is_the_schema_s() -> None:
    default = HostConfig.defaults().admin.listen
    found = re.findall(r"\(default `([^`]+)`; port `0` picks a free port", _text())
    assert found == [default]


def test_every_command_the_readme_shows_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    code = "\n".join(re.findall(r"```.*?```|`[^`\n]+`", readme, flags=re.S))
    commands = set(re.findall(r"flowstone-host ([a-z][a-z-]+)", code))
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands and commands <= known, commands - known


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
