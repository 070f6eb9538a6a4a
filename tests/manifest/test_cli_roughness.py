"""Small CLI roughness of issue 14, item 12, each with its regression test."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowstone_host.cli import main
from flowstone_host.cli.check import CheckResult
from flowstone_host.manifest.issues import Position
from flowstone_host.manifest.model import Declaration

CONFIG = (
    "apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {name: t}\n"
    "spec: {plugins_dir: plugins.d, state_dir: state}\n"
)
MANIFEST = (
    "apiVersion: flowstone/v1\nkind: IOManager\nmetadata: {name: files}\n"
    "spec: {plugin: memory}\n---\n"
    "apiVersion: flowstone/v1\nkind: Asset\nmetadata: {name: orders}\n"
    "spec: {compute: 'flowstone_host.examples.demo_assets:orders', io_manager: files}\n"
)


@pytest.fixture
def config(tmp_path: Path) -> str:
    (tmp_path / "plugins.d").mkdir()
    (tmp_path / "plugins.d" / "a.yaml").write_text(MANIFEST)
    path = tmp_path / "host.yaml"
    path.write_text(CONFIG)
    return str(path)


def test_config_show_with_a_misspelt_kind_says_did_you_mean(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "show", "files", "--kind", "IOManger", "--config", config]) == 1
    err = capsys.readouterr().err
    assert "No kind 'IOManger'; did you mean 'IOManager'?" in err


def test_the_asset_error_lists_only_assets(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--asset", "ordres", "--config", config]) == 1
    err = capsys.readouterr().err
    assert "declared: orders." in err and "IOManager" not in err


def test_a_failed_line_names_its_source_once() -> None:
    source = Position("plugins.d/a.yaml", 3, 18)
    declaration = Declaration("IOManager", "x", "p", {}, source=source)
    reason = f"IOManager 'x' (plugin 'p') ({source}): its constructor raised ValueError: no"
    line = CheckResult(declaration, "failed", reason).to_text()
    assert line.count(str(source)) == 1
    assert CheckResult(declaration, "failed", "boom").to_text().count(str(source)) == 1
