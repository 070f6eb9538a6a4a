"""Interpolation, redaction and config show: no secret or environment value leaks."""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_helpers import REPO

from flowstone_host.cli import main
from flowstone_host.config import REDACTED, interpolate, is_secret_key, redact
from flowstone_host.loading.catalog import installed
from flowstone_host.manifest.explain import explain_asset, explain_declaration
from flowstone_host.manifest.host_config import read_host_config
from flowstone_host.manifest.validate import load_manifests, validate_paths

SECRET = "hunter2-do-not-print"


def test_interpolation_is_one_pass_on_strings_only() -> None:
    data = {"a": "${X}", "b": ["${Y:-fallback}", "$${X}"], "${X}": 1, "n": 5}
    result = interpolate(data, {"X": "x\nsandbox: false ${Y}"})
    assert result.value == {
        "a": "x\nsandbox: false ${Y}",  # never re-scanned, stays one string
        "b": ["fallback", "${X}"],
        "${X}": 1,
        "n": 5,
    }
    assert result.env_paths == {("a",)}
    assert not result.problems


def test_missing_and_denied_variables_are_problems() -> None:
    result = interpolate(
        {"a": "${NOPE}", "b": "${HOME:-x}"}, {"HOME": "/root"}, lambda n: n != "HOME"
    )
    assert [(p.path, p.code) for p in result.problems] == [
        (("a",), "env.missing"),
        (("b",), "env.denied"),
    ]
    assert all("/root" not in p.message for p in result.problems)


@pytest.mark.parametrize(
    "value",
    ["${A:-${B}}", "${A", "cost: ${", "${A:-x$y}"],
    ids=["nested", "unclosed", "bare", "dollar"],
)
def test_unclosed_or_nested_references_are_problems_not_silent_text(value: str) -> None:
    result = interpolate({"a": value}, {"A": "a", "B": "b"})
    assert [(p.path, p.code) for p in result.problems] == [(("a",), "env.syntax")]
    assert result.value == {"a": value}


@pytest.mark.parametrize(
    "key",
    [
        *("password", "db_password", "apiKey", "DSN", "token", "credentials"),
        *("db_pass", "jwt", "sessionCookie", "bearer", "passwords"),
    ],
)
def test_secret_looking_keys(key: str) -> None:
    assert is_secret_key(key)
    assert redact({"x": {key: "v"}}) == {"x": {key: REDACTED}}


def test_plain_keys_are_not_secret() -> None:
    assert not any(is_secret_key(k) for k in ["level", "copy", "monkey", "keys", "tokens"])


def _manifest(tmp_path: Path, config: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(
        "apiVersion: flowstone/v1\nkind: TelemetryEmitter\nmetadata: {name: t}\n"
        f"spec:\n  plugin: logging\n  config:\n{config}"
    )
    return path


def test_errors_never_echo_environment_or_secret_values(tmp_path: Path) -> None:
    path = _manifest(
        tmp_path, "    level: ${FLOWSTONE_LEVEL}\n    password: hunter2-do-not-print\n"
    )
    report = validate_paths([path], environ={"FLOWSTONE_LEVEL": SECRET}, catalog=installed())
    assert {i.code for i in report.issues} == {"plugin.config"}
    assert SECRET not in report.to_text() and SECRET not in report.to_json()


def test_config_show_redacts_and_explains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTONE_LOG_LEVEL", "ERROR")
    assert (
        main(
            ["config", "show", "log", "--config", str(REPO / "config/host-prod.yaml"), "--explain"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "ERROR" not in out
    assert f'level: "{REDACTED}"' in out and "from the environment" in out
    assert "(overlay " in out and "plugin default" in out


def test_explain_names_each_layer() -> None:
    report = load_manifests(
        read_host_config(REPO / "config" / "host.yaml", environ={}), environ={}, catalog=installed()
    )
    reader = {k.key: k.layer for k in explain_asset(report, "enriched_lines")["reader_config"]}
    assert reader["paged"].startswith("declaration ") and "00-embedded.yaml:" in reader["paged"]
    assert reader["function"].startswith("asset override ")
    assert reader["count"] == "plugin default"
    executor = {k.key: k.value for k in explain_declaration(report, "Executor", "default")}
    assert executor == {"max_workers": 4, "kind": "thread"}


def test_config_show_says_when_a_declaration_has_no_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the shipped config's coordinators are SQLite (with a path); the memory example's are not
    config = str(REPO / "config/examples/memory/host.yaml")
    assert (
        main(["config", "show", "default", "--kind", "ScatterCoordinator", "--config", config]) == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        "ScatterCoordinator default (plugin memory):",
        "  (no config)",
    ]


def test_a_schema_function_that_raises_is_the_plugin_s_bug_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowstone_host.manifest import plugin_config
    from flowstone_host.plugins.memory_io import MemoryIOManager

    def explode(field: str, value: object, error: object) -> None:
        raise ValueError(f"cannot check {value}")

    schema = {"copy": {"type": "boolean", "check_with": explode}}
    monkeypatch.setattr(MemoryIOManager, "config_schema", schema)
    monkeypatch.setattr(plugin_config, "_VALID", {})
    plugin_config._validator.cache_clear()
    try:
        path = tmp_path / "io.yaml"
        path.write_text(
            "apiVersion: flowstone/v1\nkind: IOManager\nmetadata: {name: default}\n"
            "spec: {plugin: memory, config: {copy: true}}\n"
        )
        report = validate_paths([path], environ={}, catalog=installed())
    finally:
        plugin_config._validator.cache_clear()
    [issue] = report.issues
    assert issue.code == "plugin.bad_schema" and "report it to the plugin's author" in issue.message
    assert "cannot check" not in issue.message and "True" not in issue.message


def _host_yaml(tmp_path: Path, spec: str) -> Path:
    path = tmp_path / "host.yaml"
    path.write_text(
        f"apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {{name: h}}\nspec:\n{spec}"
    )
    return path


def test_host_config_values_may_come_from_the_environment_and_are_checked_after(
    tmp_path: Path,
) -> None:
    from flowstone_host import ConfigError

    path = _host_yaml(tmp_path, "  admin: {listen: '${FLOWSTONE_LISTEN:-127.0.0.1:9999}'}\n")
    assert read_host_config(path, environ={}).admin.listen == "127.0.0.1:9999"
    assert (
        read_host_config(path, environ={"FLOWSTONE_LISTEN": "0.0.0.0:1"}).admin.listen
        == "0.0.0.0:1"
    )
    with pytest.raises(ConfigError) as info:
        read_host_config(path, environ={"FLOWSTONE_LISTEN": "hunter2 not an address"})
    [issue] = info.value.details["issues"]
    assert (issue["line"], issue["code"]) == (5, "shape.pattern")
    assert "hunter2" not in info.value.message and "not shown" in issue["message"]


def test_an_empty_folder_from_the_environment_is_refused(tmp_path: Path) -> None:
    from flowstone_host import ConfigError

    path = _host_yaml(tmp_path, "  plugins_dir: '${FLOWSTONE_DIR:-}'\n")
    with pytest.raises(ConfigError) as info:
        read_host_config(path, environ={})
    assert info.value.details["issues"][0]["path"] == "spec.plugins_dir"


@pytest.mark.parametrize(
    "token", ["987654321", "[hunter2-do-not-print]", "{a: hunter2-do-not-print}", "2024-01-31"]
)
def test_schema_errors_never_quote_a_secret_value(tmp_path: Path, token: str) -> None:
    from flowstone_host import ConfigError

    path = _host_yaml(tmp_path, f"  admin: {{token: {token}}}\n")
    with pytest.raises(ConfigError) as info:
        read_host_config(path, environ={})
    [issue] = info.value.details["issues"]
    assert issue["path"] == "spec.admin.token"
    shown = token.strip("[]{}").removeprefix("a: ")
    assert shown not in info.value.message and shown not in issue["message"]


def test_schema_errors_quote_a_plain_value_to_help(tmp_path: Path) -> None:
    from flowstone_host import ConfigError

    path = _host_yaml(tmp_path, "  admin: {listen: 1234}\n")
    with pytest.raises(ConfigError) as info:
        read_host_config(path, environ={})
    assert '"1234"' in info.value.details["issues"][0]["message"]  # quote it: "1234"


def test_a_schema_message_shows_a_value_only_off_secret_paths() -> None:
    from flowstone_host.manifest.shape import _show

    assert _show("eu-west", ("spec", "region")) == "'eu-west'"
    assert _show(SECRET, ("spec", "admin", "token")) == "This value"
    assert _show(SECRET, ("spec", "passwords", 0)) == "This value"
    assert _show("x" * 81, ("spec", "region")) == "This value"
