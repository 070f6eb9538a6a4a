"""Hostile YAML gives a clean error quickly, never a traceback, hang or crash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from manifest_helpers import BAD, REPO

from flowstone_host.loading.catalog import installed
from flowstone_host.manifest import yaml_reader
from flowstone_host.manifest.issues import Issue
from flowstone_host.manifest.validate import validate_paths
from flowstone_host.manifest.yaml_reader import read_file, read_text

# Vendored (MIT, see its LICENSE): the test runs in every clone.
CORPUS = REPO / "tests" / "fixtures" / "yaml-test-suite"


def _only_issue(path: Path) -> tuple[str, str]:
    issues = _issues(path)
    return issues[0].code, issues[0].message


#: A hang guard, not a speed target (those are in bench/): hostile input is refused by a
#: bound on work (nodes, documents, bytes), which each test checks by its issue code.
HANG_S = 20.0


def _issues(path: Path) -> tuple[Issue, ...]:
    start = time.perf_counter()
    report = validate_paths([path], environ={}, catalog=installed())
    assert time.perf_counter() - start < HANG_S
    assert not report.ok
    return report.issues


def test_a_file_of_a_million_documents_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("--- 1\n" * 690_000)  # just under 4 MiB
    [issue] = [i for i in _issues(path) if i.code == "yaml.too_many_documents"]
    assert "split it into several files" in issue.message


def test_alias_expansion_is_bounded_per_file_not_per_document(tmp_path: Path) -> None:
    laugh = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    path = tmp_path / "fanout.yaml"
    path.write_text(("---\n" + laugh + "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n") * 120)
    assert read_file(path).issues[-1].code == "yaml.too_many_nodes"  # ~1,000 values a document
    assert "yaml.too_many_nodes" in {i.code for i in _issues(path)}


def test_strings_full_of_unclosed_references_are_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "unclosed.yaml"
    path.write_text(
        "apiVersion: flowstone/v1\nkind: Resource\nmetadata: {name: r}\nspec:\n"
        f"  plugin: journal\n  config: {{x: '{'${A:-' * 200_000}'}}\n"
    )
    code, message = _only_issue(path)
    assert code == "env.syntax" and "is not closed" in message


def test_python_tags_are_refused_before_anything_is_built(tmp_path: Path) -> None:
    for tag in ("!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!custom x"):
        path = tmp_path / "tag.yaml"
        path.write_text(f"apiVersion: flowstone/v1\nkind: IOManager\nspec: {tag}\n")
        assert _only_issue(path)[0] == "yaml.tag"


def test_billion_laughs_is_refused_by_the_node_budget() -> None:
    start = time.perf_counter()
    result = read_file(BAD / "yaml-billion-laughs.yaml")
    assert time.perf_counter() - start < HANG_S
    assert [i.code for i in result.issues] == ["yaml.too_many_nodes"]


def test_a_50_mb_file_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as stream:
        stream.truncate(50 * 1024 * 1024)  # sparse

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the oversized file was opened")

    monkeypatch.setattr(yaml_reader, "open", never, raising=False)
    code, message = _only_issue(path)
    assert code == "io.too_large"
    assert "Split it into several manifest files" in message


@pytest.mark.parametrize("style", ["flow", "block"])
def test_10000_deep_nesting_is_a_clean_error(tmp_path: Path, style: str) -> None:
    depth = 10_000
    # flow: [[[...]]]; block: "- - - ... x", nested block sequences in 20 kB
    text = "[" * depth + "]" * depth if style == "flow" else "- " * depth + "x\n"
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    code, message = _only_issue(path)
    assert code in {"yaml.syntax", "yaml.too_deep"}
    assert "nest" in message


def test_nesting_beyond_the_limit_within_libyaml_bounds(tmp_path: Path) -> None:
    result = read_text("spec: " + "[" * 100 + "]" * 100)
    assert [i.code for i in result.issues] == ["yaml.too_deep"]


def test_non_utf8_bytes_are_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1"))
    report = validate_paths([path], catalog=installed())
    issue = report.issues[0]
    assert (issue.code, issue.position.line, issue.position.column) == ("io.encoding", 1, 10)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "yaml.empty"),
        ("# only a comment\n", "yaml.empty"),
        ("---\n...\n", "yaml.empty"),
        ("- a\n- b\n", "shape.not_mapping"),
        ("42\n", "shape.not_mapping"),
        ("just text\n", "shape.not_mapping"),
        ("~\n", "shape.not_mapping"),
    ],
)
def test_empty_list_and_scalar_files(tmp_path: Path, text: str, code: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    assert _only_issue(path)[0] == code


def test_an_unreadable_path_is_an_issue(tmp_path: Path) -> None:
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    assert [i.code for i in read_file(folder).issues] == ["io.unreadable"]


def _corpus_cases() -> list[Path]:
    return sorted(CORPUS.rglob("in.yaml"))


def test_every_yaml_test_suite_case_gives_a_clean_error() -> None:
    cases = _corpus_cases()
    assert len(cases) > 300
    start = time.perf_counter()
    for case in cases:
        report = validate_paths([case], environ={}, catalog=installed())
        assert not report.ok, case  # none of them is a manifest
        for issue in report.issues:
            assert issue.position.line >= 1 and issue.position.column >= 1
            assert issue.code.split(".")[0] in {"io", "yaml", "shape", "env", "ref", "plugin"}
            assert "Traceback" not in issue.message
    assert time.perf_counter() - start < 10 * HANG_S


def test_a_bad_byte_after_a_byte_order_mark_is_located_right() -> None:
    from flowstone_host.manifest.yaml_reader import read_bytes

    [issue] = read_bytes(b'\xef\xbb\xbfa: 1\nb: "\xff"\n', "bom.yaml").issues
    assert (issue.position.line, issue.position.column) == (2, 5)
    assert "byte 0xff" in issue.message
