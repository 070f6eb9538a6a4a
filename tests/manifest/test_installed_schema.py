"""``flowstone-host schema --installed``: editors and CI check ``spec.config`` too.

Regression test of issue 14, item 7: the exported schema left ``spec.config`` free-form,
so check-jsonschema and the YAML language server accepted ``indnet: 2``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.cli import main
from flowstone_host.loading.catalog import InstalledPlugins
from flowstone_host.loading.loader import PluginLoader
from flowstone_host.loading.probe import ProbeCache
from flowstone_host.manifest.config_jsonschema import config_json_schema
from flowstone_host.manifest.host_config import HostConfig
from flowstone_host.manifest.installed_schema import installed_schema

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")


@pytest.fixture(scope="module")
def schema_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    host = HostConfig.defaults()
    # Each plugin is probed in a spawned child: at 3 s a loaded machine sometimes cut the
    # example plugin's probe off, leaving its config unchecked (and the test failing). The
    # hostile plugin whose import never ends burns CPU: the CPU limit ends it after 5 s of
    # it instead of the 30 s timeout (an ordinary probe uses well under 1 s of CPU).
    sandbox = dataclasses.replace(host.sandbox, import_timeout_s=30, cpu_s=5)
    schema = installed_schema(InstalledPlugins(PluginLoader(sandbox, ProbeCache())))
    path = tmp_path_factory.mktemp("schema") / "installed.schema.json"
    path.write_text(json.dumps(schema))
    return path


def _check(schema: Path, folder: Path, config: str, plugin: str = "example") -> Any:
    manifest = folder / "io.yaml"
    manifest.write_text(
        "apiVersion: flowstone/v1\nkind: IOManager\nmetadata: {name: files}\n"
        f"spec:\n  plugin: {plugin}\n  config: {config}\n"
    )
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--schemafile", str(schema), str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
@pytest.mark.skipif(not CHECK_JSONSCHEMA.exists(), reason="needs check-jsonschema (test extra)")
def test_check_jsonschema_refuses_a_misspelt_plugin_config_key(
    schema_file: Path, tmp_path: Path
) -> None:
    refused = _check(schema_file, tmp_path, "{indnet: 2}")
    assert refused.returncode == 1, refused.stdout
    assert "indnet" in refused.stdout
    for good in ("{indent: 2}", "{indent: '${FLOWSTONE_INDENT:-2}'}", "{}"):
        accepted = _check(schema_file, tmp_path, good)
        assert accepted.returncode == 0, (good, accepted.stdout)
    assert _check(schema_file, tmp_path, "{indent: -1}").returncode == 1  # min: 0
    assert _check(schema_file, tmp_path, "{copy: maybe}", plugin="memory").returncode == 1


def test_the_cli_writes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flowstone_host.manifest.installed_schema as module

    monkeypatch.setattr(module, "installed_schema", lambda catalog: {"title": "stub"})
    out = tmp_path / "s.json"
    assert main(["schema", "--installed", "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == {"title": "stub"}
    assert main(["schema", "--installed", "Asset"]) == 2


def test_translation_of_cerberus_rules() -> None:
    schema = config_json_schema(
        {
            "root": {"type": "string", "nullable": True, "default": None},
            "mode": {"type": "string", "allowed": ["a", "b"], "required": True},
            "n": {"type": "integer", "min": 1, "max": 9},
            "tags": {"type": "list", "schema": {"type": "string"}},
            "sub": {"type": "dict", "schema": {"x": {"type": "boolean"}}},
            "free": {"coerce": int, "type": "integer"},
        }
    )
    props = schema["properties"]
    assert schema["additionalProperties"] is False and schema["required"] == ["mode"]
    assert props["root"]["type"] == ["string", "null"]
    assert props["mode"]["enum"] == ["a", "b"]
    n = props["n"]["anyOf"][0]
    assert (n["type"], n["minimum"], n["maximum"]) == ("integer", 1, 9)
    assert props["tags"]["anyOf"][0]["items"] == {"type": "string"}
    assert props["sub"]["anyOf"][0]["properties"]["x"]["anyOf"][0] == {"type": "boolean"}
    assert props["free"] == {}  # a coercion accepts other input types: left open
