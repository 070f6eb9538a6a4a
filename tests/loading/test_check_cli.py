"""``flowstone-host check`` as a person runs it: a subprocess, its lines and its exit code."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loader_helpers import descendants, write_declaration, write_host_config
from sandbox_helpers import requires_hostile

import flowstone_host

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("flowstone-host")
# Long enough for a spawned probe to import and fail (or reach its memory limit) on a loaded
# machine: the probes run together, beside the hanging import that burns a core until it is
# cut off, and the memory-eating import zeroes every page up to its limit. At 2 s, and at
# 10 s under a load of 12 on 2 cores, that import was cut off as a hang instead.
IMPORT_TIMEOUT_S = 20.0
# Half the default 512: half the pages that import zeroes before MemoryError.
MEMORY_MB = 256

#: Plugins failing at import, and what check's manifest error line must say.
IMPORT_FAILURES = {
    "import-raises": "RuntimeError: flowstone_hostile.import_raises is broken at import",
    "import-exits": "exited with code 3 while importing",
    "import-segfaults": "killed by SIGSEGV while importing",
    "import-hangs": f"still importing after {IMPORT_TIMEOUT_S:g} s; killed",
    "import-eats-memory": f"memory limit {MEMORY_MB} MiB",
}

pytestmark = pytest.mark.integration

#: A declaration line: state, kind, name, plugin, distribution and version, reason, source.
LINE = re.compile(r"^(OK|FAILED|UNHEALTHY) +(\w+) +(\S+) +(\S+) +(\S+) (\S+)")


def check(*args: str, cwd: Path = REPO, timeout_s: float = 60) -> tuple[int, list[str]]:
    done = subprocess.run(
        [str(CLI), "check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.returncode, done.stdout.splitlines()


def declaration_lines(lines: list[str], kind: str | None = None) -> dict[str, tuple[str, str]]:
    """Return ``{name: (state, line)}`` for the declaration lines (of ``kind``, or all)."""
    found: dict[str, tuple[str, str]] = {}
    for line in lines:
        match = LINE.match(line)
        if match and kind in (None, match[2]):
            key = match[3] if kind else f"{match[2]}/{match[3]}"
            assert key not in found, f"two lines for {key}"
            found[key] = (match[1], line)
    return found


@requires_hostile
def test_good_and_hostile_declarations_one_line_each_and_exit_1(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins.d"
    for name in (*IMPORT_FAILURES, "constructor-raises", "contract-2", "wrong-base", "good"):
        write_declaration(plugins, name, f"hostile-{name}")
    config = write_host_config(
        tmp_path / "config", plugins, import_timeout_s=IMPORT_TIMEOUT_S, memory_mb=MEMORY_MB
    )
    before = descendants()
    started = time.monotonic()
    code, lines = check("--config", str(config), str(plugins), timeout_s=IMPORT_TIMEOUT_S + 60)
    assert time.monotonic() - started < IMPORT_TIMEOUT_S + 60  # the hang is cut off
    assert code == 1, lines
    states = declaration_lines(lines, "IOManager")
    assert len(declaration_lines(lines)) == len(states)
    assert {name: state for name, (state, _) in states.items()} == {
        **dict.fromkeys(IMPORT_FAILURES, "FAILED"),
        "constructor-raises": "FAILED",
        "contract-2": "FAILED",
        "wrong-base": "FAILED",
        "good": "OK",
    }
    for _, line in states.values():
        assert "flowstone-hostile 1.0.0" in line
    reasons = {
        "constructor-raises": "its constructor raised ValueError: flowstone_hostile: this "
        "constructor always fails",
        "contract-2": "implements IOManager contract 2.0.0; this host runs IOManager "
        ">=1.0.0,<2.0.0",
        "wrong-base": "is a WrongBase, not a subclass of IOManager",
    }
    for name, reason in {**reasons, **IMPORT_FAILURES}.items():
        assert reason in states[name][1]
    assert lines[-1] == "1 of 9 declaration(s) OK; 0 manifest error(s)"
    assert descendants() <= before


def test_an_unhealthy_resource_is_reported_and_still_torn_down(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins.d"
    journal = tmp_path / "journal.log"
    config = {"journal": str(journal), "label": "db", "health_file": str(tmp_path / "absent")}
    write_declaration(plugins, "db", "journal", kind="Resource", config=config)
    code, lines = check("--config", str(write_host_config(tmp_path, plugins)), str(plugins))
    assert code == 1
    [(state, line)] = declaration_lines(lines).values()
    assert state == "UNHEALTHY" and f"{tmp_path / 'absent'} is missing" in line
    assert journal.read_text().splitlines() == ["setup db", "teardown db"]
    assert lines[-1] == "0 of 1 declaration(s) OK; 0 manifest error(s)"


@requires_hostile
def test_a_resource_is_checked_with_the_resources_it_depends_on_set_up(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins.d"
    journal = tmp_path / "journal.log"
    # "app" comes first in the folder, and needs "base" up: it is brought up ahead of it
    write_declaration(
        plugins, "app", "needs", kind="Resource", config={"needs": ["base"]}, depends_on=["base"]
    )
    base = {"journal": str(journal), "label": "base"}
    write_declaration(plugins, "base", "journal", kind="Resource", config=base)
    code, lines = check("--config", str(write_host_config(tmp_path, plugins)), str(plugins))
    states = declaration_lines(lines, "Resource")
    assert {name: state for name, (state, _) in states.items()} == {"app": "OK", "base": "OK"}
    assert code == 0, lines
    assert journal.read_text().splitlines() == ["setup base", "teardown base"]  # once
    assert lines[-1] == "2 of 2 declaration(s) OK; 0 manifest error(s)"


def test_a_refused_distribution_is_an_error_naming_the_rule(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins.d"
    write_declaration(plugins, "j", "journal", config={"journal": str(tmp_path / "j.log")})
    config = write_host_config(tmp_path, plugins, deny=["flowstone-fixture-*"])
    code, lines = check("--config", str(config), str(plugins))
    assert code == 1
    [(state, line)] = declaration_lines(lines).values()
    assert state == "FAILED" and "'flowstone-fixture-plugins'" in line
    assert "sandbox.policy.deny pattern 'flowstone-fixture-*'" in line
    assert not (tmp_path / "j.log").exists()  # refused before anything ran


def test_the_shipped_plugins_folder_checks_clean() -> None:
    code, lines = check()
    assert code == 0, lines
    states = declaration_lines(lines)
    assert states and all(state == "OK" for state, _ in states.values())
    assert f"flowstone-host {flowstone_host.__version__}" in next(iter(states.values()))[1]
    assert lines[-1] == f"{len(states)} of {len(states)} declaration(s) OK; 0 manifest error(s)"


def test_a_missing_host_config_is_a_usage_error(tmp_path: Path) -> None:
    code, _ = check("--config", str(tmp_path / "nope.yaml"))
    assert code == 2
