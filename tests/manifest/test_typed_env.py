"""A value written as exactly one ``${...}`` takes the type the plugin's schema, or the host
config schema, asks for.

Regression test of issue 14, item 6: ``indent: ${FLOWSTONE_INDENT:-2}`` failed with "must
be of type integer" because interpolated values were strings, and so did
``memory_mb: ${FLOWSTONE_MEMORY_MB:-2048}`` in ``config/host.yaml``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.cli import main
from flowstone_host.config import interpolate
from flowstone_host.errors import ConfigError
from flowstone_host.loading.catalog import installed
from flowstone_host.manifest import plugin_config
from flowstone_host.manifest.host_config import HostConfig, read_host_config
from flowstone_host.manifest.typed_values import coerce_text
from flowstone_host.manifest.validate import validate_paths
from flowstone_host.plugins.memory_io import MemoryIOManager

SCHEMA = {
    "indent": {"type": "integer", "min": 0},
    "ratio": {"type": "float"},
    "strict": {"type": "boolean"},
    "label": {"type": "string"},
    "nested": {"type": "dict", "schema": {"port": {"type": "integer"}}},
}


@pytest.fixture(autouse=True)
def _schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(MemoryIOManager, "config_schema", SCHEMA)
    monkeypatch.setattr(plugin_config, "_VALID", {})
    plugin_config._validator.cache_clear()
    yield
    plugin_config._validator.cache_clear()


def _validate(tmp_path: Path, config: str, environ: dict[str, str]) -> Any:
    path = tmp_path / "a.yaml"
    path.write_text(
        "apiVersion: flowstone/v1\nkind: IOManager\nmetadata: {name: x}\n"
        f"spec:\n  plugin: memory\n  config:\n{config}"
    )
    host = dataclasses.replace(HostConfig.defaults(), env_allow=("*",))
    return validate_paths([path], host, catalog=installed(host), environ=environ)


def test_whole_references_take_the_schema_type(tmp_path: Path) -> None:
    config = (
        "    indent: ${FLOWSTONE_INDENT:-2}\n    ratio: ${RATIO}\n    strict: ${STRICT}\n"
        "    label: ${LABEL:-7}\n    nested: {port: '${PORT}'}\n"
    )
    report = _validate(tmp_path, config, {"RATIO": "0.25", "STRICT": "yes", "PORT": "5432"})
    assert report.issues == ()
    (declaration,) = report.manifests.declarations.values()
    assert dict(declaration.config) == {
        "indent": 2,
        "ratio": 0.25,
        "strict": True,
        "label": "7",  # a string where the schema asks for one
        "nested": {"port": 5432},
    }


def test_text_around_a_reference_stays_a_string(tmp_path: Path) -> None:
    report = _validate(tmp_path, "    indent: 'x${N}'\n", {"N": "2"})
    assert [i.code for i in report.issues] == ["plugin.config"]
    assert "must be of type integer" in report.issues[0].message


def test_a_value_that_does_not_parse_is_one_clear_error_without_the_value(
    tmp_path: Path,
) -> None:
    report = _validate(tmp_path, "    indent: ${FLOWSTONE_INDENT}\n", {"FLOWSTONE_INDENT": "tw0"})
    (issue,) = report.issues
    assert issue.code == "plugin.config" and issue.path == ("spec", "config", "indent")
    assert "must be of type integer" in issue.message and "does not parse" in issue.message
    assert "tw0" not in issue.message
    assert (issue.position.line, issue.position.column) == (7, 13)  # the value


@pytest.mark.parametrize(
    ("text", "wanted", "value"),
    [
        ("42", "integer", 42),
        ("-3", "integer", -3),
        ("1.5", "number", 1.5),
        ("2", "number", 2),
        ("TRUE", "boolean", True),
        ("off", "boolean", False),
        ("1e3", "float", 1000.0),
    ],
)
def test_coerce_text(text: str, wanted: str, value: Any) -> None:
    assert coerce_text(text, wanted) == value and type(coerce_text(text, wanted)) is type(value)


@pytest.mark.parametrize(
    ("text", "wanted"), [("1.5", "integer"), ("nan", "number"), ("yes please", "boolean")]
)
def test_coerce_text_refuses(text: str, wanted: str) -> None:
    with pytest.raises(ValueError):
        coerce_text(text, wanted)


def test_only_whole_references_are_typed_paths() -> None:
    result = interpolate({"a": "${X}", "b": "x${X}", "c": "$${X}", "d": "${MISSING}"}, {"X": "1"})
    assert result.typed_paths == {("a",)}


def _host(tmp_path: Path, spec: str) -> Path:
    path = tmp_path / "host.yaml"
    path.write_text(
        f"apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {{name: t}}\nspec:\n{spec}"
    )
    return path


HOST_SPEC = (
    "  sandbox:\n    probe_imports: ${PROBE}\n"
    "    limits: {memory_mb: '${FLOWSTONE_MEM:-2048}', call_timeout_s: '${CALL}'}\n"
    "  reload: {debounce_ms: '${DEBOUNCE:-100}', rescan_interval_s: '${RESCAN:-0}'}\n"
    "  admin: {listen: '127.0.0.1:${PORT:-8787}', token: '${TOKEN:-123}'}\n"
    "  overlays: ['${OVERLAY:-1}']\n"
)


def test_host_config_whole_references_take_the_schema_type(tmp_path: Path) -> None:
    environ = {"PROBE": "off", "CALL": "2.5", "RESCAN": "15"}
    host = read_host_config(_host(tmp_path, HOST_SPEC), environ)
    assert host.sandbox.probe_imports is False
    assert host.sandbox.memory_mb == 2048 and type(host.sandbox.memory_mb) is int
    assert host.sandbox.call_timeout_s == 2.5
    assert host.reload.debounce_ms == 100 and host.reload.rescan_interval_s == 15
    assert host.admin.listen == "127.0.0.1:8787" and host.admin.token == "123"  # strings
    assert host.overlays == (tmp_path / "1",)


def test_a_host_config_value_that_does_not_parse_names_file_line_and_field(
    tmp_path: Path,
) -> None:
    path = _host(tmp_path, HOST_SPEC)
    environ = {"PROBE": "off", "CALL": "2.5", "FLOWSTONE_MEM": "lots"}
    with pytest.raises(ConfigError) as caught:
        read_host_config(path, environ)
    [issue] = caught.value.details["issues"]
    assert (issue["file"], issue["line"], issue["column"]) == (str(path), 7, 25)
    assert issue["path"] == "spec.sandbox.limits.memory_mb" and issue["code"] == "shape.type"
    assert issue["message"] == (
        "Host config key 'sandbox.limits.memory_mb' must be of type integer, and the value "
        "its ${...} gave does not parse as one; fix the variable or its default."
    )
    assert "lots" not in str(caught.value)


def test_validate_reports_it_once_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plugins.d").mkdir()
    spec = "  plugins_dir: plugins.d\n  state_dir: state\n  sandbox:\n    probe_imports: ${PROBE}\n"
    monkeypatch.setenv("PROBE", "maybe")
    assert main(["validate", "--config", str(_host(tmp_path, spec))]) == 2
    err = capsys.readouterr().err
    assert "host.yaml:8:20: error[shape.type]: Host config key 'sandbox.probe_imports' must " in err
    assert err.count("error[") == 1 and "maybe" not in err


def test_a_converted_host_config_value_is_still_range_checked(tmp_path: Path) -> None:
    path = _host(tmp_path, "  sandbox: {limits: {memory_mb: '${FLOWSTONE_MEM}'}}\n")
    with pytest.raises(ConfigError) as caught:
        read_host_config(path, {"FLOWSTONE_MEM": "8"})
    [issue] = caught.value.details["issues"]
    assert issue["code"] == "shape.range" and "environment" in issue["message"]


def test_text_around_a_host_config_reference_stays_a_string(tmp_path: Path) -> None:
    path = _host(tmp_path, "  sandbox: {limits: {memory_mb: 'x${FLOWSTONE_MEM}'}}\n")
    with pytest.raises(ConfigError) as caught:
        read_host_config(path, {"FLOWSTONE_MEM": "64"})
    [issue] = caught.value.details["issues"]
    assert issue["code"] == "shape.type" and issue["path"] == "spec.sandbox.limits.memory_mb"


def test_a_later_layer_written_plainly_is_not_converted(tmp_path: Path) -> None:
    asset = (
        "---\napiVersion: flowstone/v1\nkind: Asset\nmetadata: {name: orders}\nspec:\n"
        "  compute: 'flowstone_host.examples.demo_assets:orders'\n  io_manager: x\n"
        "  io_config: {indent: '3'}\n"
    )
    report = _validate(tmp_path, f"    indent: ${{FLOWSTONE_INDENT:-2}}\n{asset}", {})
    [issue] = report.issues
    assert issue.path == ("spec", "io_config", "indent") and issue.position.line == 15
    assert "must be of type integer; fix the value" in issue.message
