"""A value written as exactly one ``${...}`` takes the type the plugin's schema asks for.

Regression test of issue 14, item 6: ``indent: ${FLOWSTONE_INDENT:-2}`` failed with "must
be of type integer" because interpolated values were strings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.config import coerce_text, interpolate
from flowstone_host.loading.catalog import installed
from flowstone_host.manifest import plugin_config
from flowstone_host.manifest.host_config import HostConfig
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
