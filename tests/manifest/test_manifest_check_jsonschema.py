"""check-jsonschema with the shipped schema agrees with the host's shape verdict.

check-jsonschema reads one YAML document per file, so each fixture is split into its
documents first. Only documents the host could read have a shape verdict: a file the host
refuses while reading (duplicate keys, tags, aliases, encoding) never reaches the schema.

One divergence is by design: check-jsonschema reads YAML 1.2, where ``NO`` and ``on`` are
strings, while the host reads YAML 1.1 like PyYAML and asks for such words to be quoted
(``shape.quote_string``); the test pins that down instead of hiding it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from manifest_helpers import BAD, GOOD, REPO

from flowstone_host.manifest.shape import shape_issues
from flowstone_host.manifest.yaml_reader import read_file

SCHEMA = REPO / "schemas" / "manifest.schema.json"
CHECKER = Path(sys.executable).with_name("check-jsonschema")


def _documents(tmp_path: Path) -> dict[Path, tuple[Path, set[str]]]:
    """Split every fixture into documents; map each to (fixture, host shape codes)."""
    found: dict[Path, tuple[Path, set[str]]] = {}
    for fixture in sorted([*GOOD.glob("*.yaml"), *BAD.glob("*.yaml")]):
        result = read_file(fixture)
        if result.issues:
            continue  # refused while reading: no shape verdict to compare
        chunks = fixture.read_text().split("\n---\n")
        assert len(chunks) == len(result.documents), fixture
        for document, chunk in zip(result.documents, chunks, strict=True):
            target = tmp_path / f"{fixture.stem}-{document.index}.yaml"
            target.write_text(chunk)
            found[target] = (fixture, {i.code for i in shape_issues(document)})
    return found


@pytest.mark.skipif(
    not CHECKER.exists() and shutil.which("check-jsonschema") is None,
    reason="check-jsonschema is not installed (pip install -e '.[test]')",
)
def test_check_jsonschema_agrees_with_the_host(tmp_path: Path) -> None:
    documents = _documents(tmp_path)
    assert len(documents) > 40
    command = [str(CHECKER) if CHECKER.exists() else "check-jsonschema"]
    command += ["--schemafile", str(SCHEMA), "--output-format", "json", *map(str, documents)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    output = json.loads(done.stdout)
    rejected = {Path(e["filename"]) for e in output.get("errors", [])}
    rejected |= {Path(e["filename"]) for e in output.get("parse_errors", [])}
    for path, (fixture, codes) in documents.items():
        if codes == {"shape.quote_string"}:
            assert path not in rejected, f"{fixture}: YAML 1.2 reads the word as a string"
        else:
            assert (path in rejected) == bool(codes), f"{fixture} ({path.name}): host {codes}"
