"""One bad value gives one error (issue 14, item 12), in ``validate`` and ``check``.

Before: a ``${VAR}`` that could not be substituted was reported as ``env.missing`` and
again as the plugin's type error on the text left as written; a number of the wrong type
and out of range was both ``shape.type`` and ``shape.range``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flowstone_host.cli import main

HOST = (
    "apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {{name: t}}\n"
    "spec:\n  plugins_dir: plugins.d\n  state_dir: state\n{extra}"
)
IO = (
    "apiVersion: flowstone/v1\nkind: IOManager\nmetadata: {{name: files}}\n"
    "spec:\n  plugin: memory\n  config:\n    copy: {value}\n"
)


def _tree(tmp_path: Path, manifest: str, extra: str = "") -> str:
    (tmp_path / "plugins.d").mkdir()
    (tmp_path / "plugins.d" / "a.yaml").write_text(manifest)
    config = tmp_path / "host.yaml"
    config.write_text(HOST.format(extra=extra))
    return str(config)


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if ": error[" in line]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("${FLOWSTONE_UNSET_14}", "env.missing"),
        ("${NOT_ALLOWED_14}", "env.denied"),
        ("'${FLOWSTONE_UNCLOSED'", "env.syntax"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "check"])
def test_a_reference_that_cannot_be_substituted_is_one_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    value: str,
    code: str,
) -> None:
    monkeypatch.delenv("FLOWSTONE_UNSET_14", raising=False)
    config = _tree(tmp_path, IO.format(value=value))
    assert main([command, "--config", config]) == 1
    out = capsys.readouterr()
    [error] = _errors(out.out + out.err)
    assert f"a.yaml:7:11: error[{code}]" in error and error.endswith("(at spec.config.copy)")


def test_a_host_config_value_of_the_wrong_type_and_range_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _tree(tmp_path, IO.format(value="true"), "  reload: {debounce_ms: -1.5}\n")
    assert main(["validate", "--config", config]) == 2
    [error] = _errors(capsys.readouterr().err)
    assert "host.yaml:7:25: error[shape.type]: Expected integer here" in error
    assert error.endswith("(at spec.reload.debounce_ms)")


def test_a_manifest_value_of_the_wrong_type_and_range_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scatter = (
        "apiVersion: flowstone/v1\nkind: Asset\nmetadata: {name: orders}\nspec:\n"
        "  compute: 'flowstone_host.examples.demo_assets:orders'\n"
        "  scatter:\n    item: 'flowstone_host.examples.demo_assets:orders'\n"
        "    reader: rows\n    batch_size: -0.5\n"
    )
    config = _tree(tmp_path, scatter)
    assert main(["validate", "--config", config]) == 1
    errors = [e for e in _errors(capsys.readouterr().out) if "batch_size" in e]
    assert len(errors) == 1 and "error[shape.type]" in errors[0], errors


def test_two_problems_at_two_fields_stay_two_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWSTONE_UNSET_14", raising=False)
    manifest = IO.format(value="${FLOWSTONE_UNSET_14}") + "    cpoy: true\n"
    config = _tree(tmp_path, manifest)
    assert main(["validate", "--config", config]) == 1
    errors = _errors(capsys.readouterr().out)
    assert [e.split("error[")[1].split("]")[0] for e in errors] == ["env.missing", "plugin.config"]
