"""Mutation testing of the modules where a silent bug hurts most: ``make mutation``.

Each module is mutated against its own tests only, in a copy of the tree of its own
(``build/mutation/<module>/``), because mutmut 3 works in a ``mutants/`` copy beside the
``pyproject.toml`` it reads and keeps one configuration per run. The shared settings are
``[tool.mutmut]`` in ``pyproject.toml``; this script adds the module and its tests.

Usage: ``python tests/mutate.py [MODULE ...]`` (names as in :data:`MODULES`, e.g.
``registry``); all of them by default. Prints one line per module with its kill rate and
writes the table to ``build/mutation/summary.md``. Exits 1 when a module is under
:data:`TARGET`, so that CI could gate on it; ``make mutation`` does not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
TARGET = 0.95

#: The module to mutate (under flowstone_host/) and the tests that are its own.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "transaction": (
        "host/transaction.py",
        ("tests/host/test_transaction.py", "tests/host/test_host.py"),
    ),
    "registry": ("registry.py", ("tests/test_registry.py",)),
    "partitions": ("partitions.py", ("tests/test_partitions.py",)),
    "memory_coordinators": (
        "plugins/memory_coordinators.py",
        ("tests/plugins/test_conformance_builtin.py", "tests/plugins/test_coordinator_details.py"),
    ),
    "config": (
        "config.py",
        ("tests/test_config.py", "tests/manifest/test_manifest_config.py"),
    ),
    "sqlite_scatter": (
        "plugins/sqlite/scatter.py",
        (
            "tests/plugins/test_sqlite_conformance.py",
            "tests/plugins/test_sqlite_coordinators.py",
            "tests/plugins/test_coordinator_details.py",
        ),
    ),
    "runtime_scatter": ("runtime/scatter.py", ("tests/runtime/test_scatter.py",)),
}

#: Lines not mutated, beyond ``do_not_mutate_patterns`` in ``pyproject.toml``, each with the
#: reason its mutants change no behaviour. Added to every module's copy by :func:`configure`.
EXCLUDED: dict[str, str] = {
    # `raise ValueError("bad mapping")` -> `raise ValueError(None)`, "XX..XX", upper case:
    # the error's type (and so its code) stays, only its text changes. Where the text is
    # never shown at all (partitions' inner ValueErrors become one ValidationError), the
    # mutant could not be told apart by any test.
    r'^\s*raise \w+\(f?"[^"]*"\)$': "a one-line raise whose only argument is its message",
}

#: What the copy needs: the package, its tests and the files tests read.
COPIED = ("flowstone_host", "tests", "schemas", "config", "plugins.d", "pyproject.toml")
KILLED, SURVIVED, NO_TESTS, TIMEOUT = (1, 3), (0,), (5, 33), (36, -24, 24, 152, 255)


@dataclass
class Outcome:
    module: str
    killed: int
    survived: int
    no_tests: int
    timeout: int
    other: int
    seconds: float
    survivors: list[str]

    @property
    def total(self) -> int:
        return self.killed + self.survived + self.no_tests + self.timeout + self.other

    @property
    def rate(self) -> float:
        # A timeout is a kill (the mutant made the tests hang); "no tests" is a survivor.
        checked = self.total - self.other
        return (self.killed + self.timeout) / checked if checked else 0.0


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"Unknown module(s) {unknown}; choose from {', '.join(MODULES)}.")
        return 2
    outcomes = []
    for name in names:
        module, tests = MODULES[name]
        present = [t for t in tests if (ROOT / t).exists()]
        if not (ROOT / "flowstone_host" / module).exists() or not present:
            print(f"{name}: skipped (flowstone_host/{module} or its tests are not in this tree)")
            continue
        outcomes.append(run_module(name, module, present))
    table = summary(outcomes)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "summary.md").write_text(table)
    print("\n" + table)
    return 0 if all(o.rate >= TARGET for o in outcomes) else 1


def run_module(name: str, module: str, tests: list[str]) -> Outcome:
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.egg-info", "mutants")
    for item in COPIED:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, work / item, ignore=ignore)
        else:
            shutil.copy2(source, work / item)
    configure(work / "pyproject.toml", module, tests)
    started = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(os.cpu_count() or 2)]
    print(f"{name}: mutating flowstone_host/{module} against {' '.join(tests)}", flush=True)
    log = work / "mutmut.log"
    with log.open("w") as out:
        subprocess.run(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    outcome = collect(name, work / "mutants" / "flowstone_host" / f"{module}.meta")
    outcome.seconds = time.monotonic() - started
    print(line(outcome), flush=True)
    if outcome.total == 0:
        print(f"  no mutants were checked; see {log.relative_to(ROOT)}")
    return outcome


def configure(pyproject: Path, module: str, tests: list[str]) -> None:
    """Point the copy's ``[tool.mutmut]`` at one module and its tests, and add
    :data:`EXCLUDED` to its ``do_not_mutate_patterns``."""
    text = pyproject.read_text()
    extra = (
        f'only_mutate = ["flowstone_host/{module}"]\n'
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
    )
    text, count = re.subn(r"^\[tool\.mutmut\]\n", "[tool.mutmut]\n" + extra, text, flags=re.M)
    if count != 1:
        raise SystemExit("pyproject.toml needs one [tool.mutmut] table")
    patterns = "".join(f"    '{pattern}',\n" for pattern in EXCLUDED)  # TOML literal strings
    text, count = re.subn(
        r"^do_not_mutate_patterns = \[\n", lambda m: m.group(0) + patterns, text, flags=re.M
    )
    if count != 1:
        raise SystemExit("[tool.mutmut] needs a do_not_mutate_patterns list, one item a line")
    pyproject.write_text(text)


def collect(name: str, meta: Path) -> Outcome:
    codes: dict[str, int | None] = {}
    if meta.exists():
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
    count = {"killed": 0, "survived": 0, "no_tests": 0, "timeout": 0, "other": 0}
    survivors = []
    for key, code in sorted(codes.items()):
        if code in KILLED:
            count["killed"] += 1
        elif code in TIMEOUT:
            count["timeout"] += 1
        elif code in SURVIVED or code in NO_TESTS:
            count["survived" if code in SURVIVED else "no_tests"] += 1
            survivors.append(key)
        else:
            count["other"] += 1
    return Outcome(name, **count, seconds=0.0, survivors=survivors)


def line(o: Outcome) -> str:
    return (
        f"{o.module}: {o.rate:.1%} killed ({o.killed} killed, {o.timeout} timed out, "
        f"{o.survived} survived, {o.no_tests} without tests, {o.other} not checked; "
        f"{o.seconds:.0f} s)"
    )


def summary(outcomes: list[Outcome]) -> str:
    rows = [
        "| module | mutants | killed | timed out | survived | no tests | kill rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        module = MODULES[o.module][0]
        rows.append(
            f"| `{module}` | {o.total} | {o.killed} | {o.timeout} | {o.survived} | "
            f"{o.no_tests} | {o.rate:.1%} |"
        )
    survivors = [f"- `{key}`" for o in outcomes for key in o.survivors]
    return "\n".join([*rows, "", "Survivors:", "", *(survivors or ["- none"])]) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
