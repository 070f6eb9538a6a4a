"""``flowstone-host partitions`` paging, and materialize's partition options, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowstone_host.cli.main import main
from tests.runtime.test_partitions_kill import setup


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FS_TEST_LOG", str(tmp_path / "days.log"))
    monkeypatch.chdir(tmp_path)
    return str(setup(tmp_path))


def _out(capsys: pytest.CaptureFixture[str]) -> tuple[list[str], str]:
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


def test_partitions_pages_with_limit_and_after(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["partitions", "days", "--limit", "3", "--config", host]) == 0
    lines, err = _out(capsys)
    assert lines == [f"2024-01-0{d}\t~d2024-01-0{d}" for d in (1, 2, 3)]
    assert "3 partition(s) of 366; next page: --after ~d2024-01-03" in err
    page = ["partitions", "days", "--after", "~d2024-01-03", "--limit", "2"]
    assert main([*page, "--config", host]) == 0
    lines, _ = _out(capsys)
    assert [line.split("\t")[0] for line in lines] == ["2024-01-04", "2024-01-05"]
    assert main(["partitions", "days", "--after", "2024-12-30", "--config", host]) == 0
    lines, err = _out(capsys)
    assert lines == ["2024-12-31\t~d2024-12-31"] and "next page" not in err


def test_missing_lists_what_a_range_left_unstored(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--config", host]
    first_ten = ["--partition-range", "2024-01-01..2024-01-10"]
    assert main(["materialize", "days", *first_ten, *args]) == 0
    lines, _ = _out(capsys)
    assert lines[-1].endswith("succeeded (10 partition(s))")
    listing = ["partitions", "days", "--missing", "--limit", "2", "--format", "json"]
    assert main([*listing, *args]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["partition"] for p in data["partitions"]] == ["2024-01-11", "2024-01-12"]
    assert data["next_after"] == "~d2024-01-12" and data["count"] == 366
    backfill = ["materialize", "days", "--missing", "--partition-range", "..2024-01-12"]
    assert main([*backfill, *args]) == 0
    lines, _ = _out(capsys)
    assert "  days [2024-01-11]: succeeded" in lines and len(lines) == 4  # run, 2 steps, end
    assert main(["partitions", "days", "--missing", "--limit", "1", *args]) == 0
    lines, _ = _out(capsys)
    assert lines == ["2024-01-13\t~d2024-01-13"]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["partitions", "days", "--after", "2025-01-01"], 1, "nearest: 2024-12-27"),
        (["partitions", "nope"], 1, "No asset named 'nope'"),
        (["partitions", "days", "--limit", "0"], 2, "--limit is 1 to"),
        (["materialize", "days", "--partition", "2030-01-01"], 2, "nearest: 2024-12-27"),
        (["materialize", "days", "--partition", "2024-01-01", "--missing"], 2, "excludes"),
        (["materialize", "days", "--missing", "--concurrency", "0"], 2, "at least 1"),
        (["materialize", "days", "--partition-range", "2024-02-01"], 2, "FIRST..LAST"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    host: str, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert main([*argv, "--config", host]) == code
    assert message in capsys.readouterr().err
