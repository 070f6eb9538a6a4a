"""The validate, schema, plugins and config commands and their exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from manifest_helpers import BAD, REPO

from flowstone_host.cli import main
from flowstone_host.loading import entry_points


def test_validate_shipped_manifests_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["validate", str(REPO / "plugins.d"), "--config", str(REPO / "config/host.yaml")]) == 0
    )
    assert capsys.readouterr().out.strip().endswith("valid")


def test_validate_with_no_path_reads_the_host_config_folders() -> None:
    assert main(["validate", "--config", str(REPO / "config/host-prod.yaml")]) == 0


def test_validate_invalid_exits_1_with_located_lines(capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD / "shape-unknown-key.yaml"
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{path}:6:3: error[shape.unknown_key]: Unknown key 'plugn'")
    assert out[-1] == "1 file(s), 1 document(s): 1 error(s) in 1 file(s)"


def test_validate_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(BAD / "ref-dependency-cycle.yaml")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False
    assert data["errors"][0]["code"] == "ref.dependency_cycle"
    assert data["errors"][0]["path"] == "spec.deps[0]"


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "no/such/path"],
        ["validate", "--format", "xml"],
        ["validate", "--config", "no/such/host.yaml"],
    ],
)
def test_validate_usage_errors_exit_2(argv: list[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    assert code == 2


def test_schema_prints_a_self_contained_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["schema", "Asset"]) == 0
    schema = json.loads(capsys.readouterr().out)
    validator = Draft202012Validator(schema)  # no registry: every $ref resolves inside
    good = {
        "apiVersion": "flowstone/v1",
        "kind": "Asset",
        "metadata": {"name": "a"},
        "spec": {"compute": "m:f"},
    }
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors({**good, "kind": "IOManager"}))
    assert main(["schema", "Nope"]) == 2


def test_entry_points_discover_and_refresh() -> None:
    names = [info.name for info in entry_points.discover("flowstone.io_managers")]
    assert "memory" in names
    memory = entry_points.find("flowstone.io_managers", "memory")
    assert memory is not None and memory.distribution == "flowstone-host"
    entry_points.refresh()
    cls = entry_points.load_class("flowstone.io_managers", "memory")
    assert cls.__name__ == "MemoryIOManager"
