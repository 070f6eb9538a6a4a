"""Every bad fixture gives its expected file:line:col, code and message; good ones are valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_helpers import BAD, GOOD, REPO, expectation

from flowstone_host.loading.catalog import installed
from flowstone_host.manifest.host_config import read_host_config
from flowstone_host.manifest.validate import load_manifests, validate_layers, validate_paths

BAD_FIXTURES = sorted(BAD.glob("*.yaml"))


def test_there_is_a_fixture_per_error_class() -> None:
    codes = {expectation(path)[2] for path in BAD_FIXTURES}
    layers = {code.split(".")[0] for code in codes}
    assert layers == {"io", "yaml", "shape", "env", "ref", "plugin"}
    assert len(codes) >= 28


@pytest.mark.parametrize("path", BAD_FIXTURES, ids=lambda p: p.stem)
def test_bad_fixture_reports_its_error(path: Path) -> None:
    line, column, code, fragment = expectation(path)
    report = validate_paths([path], environ={}, catalog=installed())
    assert not report.ok
    first = report.issues[0]
    assert (first.code, first.position.line, first.position.column) == (code, line, column)
    assert first.position.file == str(path)
    assert fragment in first.message
    assert first.to_text().startswith(f"{path}:{line}:{column}: error[{code}]: ")
    assert len(report.issues) == 1, [i.to_text() for i in report.issues]


def test_good_fixtures_are_valid_together_and_build_the_model() -> None:
    report = validate_paths(
        [GOOD], environ={"FLOWSTONE_TEST_LOGGER": "from.env"}, catalog=installed()
    )
    assert report.ok, report.to_text()
    emitter = report.manifests.get("TelemetryEmitter", "on")
    assert emitter is not None
    assert dict(emitter.config) == {
        "logger": "from.env",
        "level": "ERROR",
        "prefix": ("flowstone",),
    }
    assert emitter.env_paths == frozenset({("logger",)})
    scatter = report.manifests.assets["enriched_lines"].scatter
    assert scatter is not None and scatter.tolerated_failures == {"percent": 10}
    assert scatter.resolved_reader_config["paged"] is False  # declaration's config
    assert scatter.resolved_reader_config["count"] is None  # plugin default
    assert report.manifests.assets["order_totals"].resolved_io_config == {"copy": True}


def test_shipped_manifests_validate() -> None:
    host = read_host_config(REPO / "config" / "host.yaml", environ={})
    report = load_manifests(host, environ={}, catalog=installed(host))
    assert report.ok, report.to_text()
    assert {k for k, _ in report.manifests.declarations} >= {"IOManager", "Executor"}
    assert "report" in report.manifests.assets


def test_prod_overlay_changes_config_through_yaml_only() -> None:
    host = read_host_config(REPO / "config" / "host-prod.yaml", environ={})
    report = load_manifests(host, environ={}, catalog=installed(host))
    assert report.ok, report.to_text()
    io = report.manifests.get("IOManager", "default")
    assert io is not None and io.config == {"copy": True}
    assert [p.file for p in io.sources] == [
        str(REPO / "plugins.d" / "00-embedded.yaml"),
        str(REPO / "plugins.d" / "overlays" / "prod" / "10-backends.yaml"),
    ]
    emitter = report.manifests.get("TelemetryEmitter", "log")
    assert emitter is not None and emitter.config["level"] == "INFO"


def test_all_errors_are_reported_not_just_the_first(tmp_path: Path) -> None:
    text = (BAD / "shape-unknown-key.yaml").read_text().replace("kind: IOManager", "kind: X")
    path = tmp_path / "two.yaml"
    path.write_text(text + "\n---\n- 1\n")
    codes = [issue.code for issue in validate_paths([path], catalog=installed()).issues]
    assert codes == ["shape.enum", "shape.not_mapping"]


def test_unknown_path_is_not_found() -> None:
    from flowstone_host.errors import NotFound

    with pytest.raises(NotFound) as excinfo:
        validate_paths([REPO / "no-such-folder"], catalog=installed())
    assert excinfo.value.path.endswith("no-such-folder")


def test_an_overlay_switching_plugin_replaces_the_declaration(tmp_path: Path) -> None:
    base, prod = tmp_path / "base", tmp_path / "prod"
    base.mkdir()
    prod.mkdir()
    header = "apiVersion: flowstone/v1\nkind: IOManager\nmetadata: {name: default}\n"
    (base / "io.yaml").write_text(header + "spec: {plugin: memory, config: {copy: false}}\n")
    (prod / "io.yaml").write_text(
        header + f"spec: {{plugin: example, config: {{root: '{tmp_path}'}}}}\n"
    )
    report = validate_layers([[base], [prod]], environ={}, catalog=installed())
    assert report.ok, report.to_text()
    io = report.manifests.get("IOManager", "default")
    assert io is not None and (io.plugin, io.config["root"]) == ("example", str(tmp_path))
    assert "copy" not in io.config  # memory's config did not leak into example's
    assert [p.file for p in io.sources] == [str(prod / "io.yaml")]
