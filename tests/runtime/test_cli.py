"""The CLI end to end on a copy of the shipped config: materialize, runs, runs show."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowstone_host import telemetry
from flowstone_host.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "plugins.d", tmp_path / "plugins.d")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    leftover = [h for h, _ in telemetry.list_handlers() if h.startswith("flowstone-host:")]
    assert leftover == []  # Host.stop() detached the emitters it attached


def test_materialize_report_runs_every_contract_on_the_embedded_default(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["materialize", "report"]) == 0
    out = capsys.readouterr().out
    for step in ("orders [2024-01-01]", "enriched_lines", "order_stats", "report"):
        assert f"  {step}: succeeded" in out
    assert out.splitlines()[-1].endswith(" succeeded")
    assert (shipped / "state" / "coordinators.sqlite").exists()  # SQLite coordinators
    run_id = out.splitlines()[-1].split()[1]

    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert run_id in listing and "succeeded" in listing and "report" in listing
    assert main(["runs", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert "enriched_lines [~n]: succeeded  {'completed': 50, 'failed': 0, 'total': 50}" in shown
    assert main(["runs", "show", "nope"]) == 1


def test_usage_errors_exit_2(shipped: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["materialize", "nope"]) == 2
    assert "No asset named 'nope'" in capsys.readouterr().err
    assert main(["materialize", "orders", "--partition", "2030-01-01"]) == 2
    assert main(["materialize", "orders", "--fresh", "--run-id", "x"]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["materialize"])
    assert exited.value.code == 2


def test_a_failed_run_exits_1_and_the_next_resumes_it(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = shipped / "plugins.d" / "20-demo-pipeline.yaml"
    demo.write_text(demo.read_text().replace(":enrich", ":no_such_function"))
    assert main(["materialize", "enriched_lines"]) == 1
    err = capsys.readouterr().err
    assert "failed" in err and "no_such_function" in err
    demo.write_text(demo.read_text().replace(":no_such_function", ":enrich"))
    assert main(["materialize", "enriched_lines"]) == 0
    assert "resuming run" in capsys.readouterr().out


def test_runs_retune_and_redrive_are_recorded_and_shown(
    shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["materialize", "report"]) == 0
    run_id = capsys.readouterr().out.splitlines()[-1].split()[1]
    assert main(["runs", "retune", run_id, "--max-concurrency", "8", "--tolerate", "5%"]) == 0
    out = capsys.readouterr().out
    assert "retuned {'max_concurrency': 8, 'tolerated_failures': {'percent': 5.0}}" in out
    assert main(["runs", "retune", run_id, "--tolerate", "lots"]) == 2
    assert main(["runs", "retune", "nope", "--max-concurrency", "2"]) == 1
    assert main(["redrive", run_id]) == 0
    assert "nothing to redrive" in capsys.readouterr().out
    assert main(["runs", "show", run_id, "--local"]) == 0
    shown = capsys.readouterr().out
    assert "redrive " in shown and "0 key(s) retried (none): nothing to redrive" in shown
    assert "retune " in shown and "{'max_concurrency': 8," in shown
