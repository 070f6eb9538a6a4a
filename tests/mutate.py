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

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
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
    "sqlite_parallel": (
        "plugins/sqlite/parallel.py",
        (
            "tests/plugins/test_sqlite_conformance.py",
            "tests/plugins/test_sqlite_coordinators.py",
            "tests/plugins/test_coordinator_details.py",
        ),
    ),
    "sqlite_routing": (
        "plugins/sqlite/routing.py",
        (
            "tests/plugins/test_sqlite_conformance.py",
            "tests/plugins/test_sqlite_coordinators.py",
            "tests/plugins/test_coordinator_details.py",
        ),
    ),
    "postgres_parallel": (
        "plugins/postgres/parallel.py",
        (
            "tests/plugins/postgres/test_postgres_conformance.py",
            "tests/plugins/test_coordinator_details.py",
        ),
    ),
    "postgres_routing": (
        "plugins/postgres/routing.py",
        (
            "tests/plugins/postgres/test_postgres_conformance.py",
            "tests/plugins/test_coordinator_details.py",
        ),
    ),
    "postgres_scatter": (
        "plugins/postgres/scatter.py",
        (
            "tests/plugins/postgres/test_postgres_conformance.py",
            "tests/plugins/test_coordinator_details.py",
        ),
    ),
    "runtime_dispatch": (
        "runtime/dispatch.py",
        (
            "tests/runtime/test_scatter.py",
            "tests/runtime/test_redrive.py",
            "tests/runtime/test_materialize.py",
            "tests/runtime/test_dispatch.py",
        ),
    ),
}

#: Modules whose own tests need a PostgreSQL server: one is started for the whole run
#: (tests/postgres_server.py, handed to the tests as ``FLOWSTONE_TEST_PG_DSN``), and their
#: tests marked ``integration`` run too (they call the mutated code in this process; only
#: the server is another).
WITH_POSTGRES = frozenset({"postgres_scatter", "postgres_parallel", "postgres_routing"})

#: Lines not mutated, beyond ``do_not_mutate_patterns`` in ``pyproject.toml``, each with the
#: reason its mutants change no behaviour. Added to every module's copy by :func:`configure`.
EXCLUDED: dict[str, str] = {
    # `raise ValueError("bad mapping")` -> `raise ValueError(None)`, "XX..XX", upper case:
    # the error's type (and so its code) stays, only its text changes. Where the text is
    # never shown at all (partitions' inner ValueErrors become one ValidationError), the
    # mutant could not be told apart by any test.
    r'^\s*raise \w+\(f?"[^"]*"\)$': "a one-line raise whose only argument is its message",
}

_SQL_CASE = "SQL keywords and identifiers are case-insensitive"
_TOLERATED_CHECKED = (
    "check_tolerated() has validated the threshold already, so dumps() never fails and its "
    "`what` is never shown; None stored as JSON null reads back as None too"
)
_FIVE_COLUMNS = "the query selects the five columns the five names describe: the lengths match"
_ONLY_TRUTH = "the value is only tested for truth, and None is as false as False"
_NO_FAILURES_EXCEEDED = (
    "threshold_exceeded needs a failure (threshold_exceeded() is False at 0), so it never "
    "meets 'no failed keys' and the name's spelling is never compared"
)

#: Survivors judged equivalent: no test can tell them from the original code. Each entry is
#: (reason, function, line(s) before, the lines after of each such mutant), compared with
#: the mutant's diff as ``mutmut show`` prints it (stripped lines, joined by newlines), so an
#: entry stops matching as soon as the code it describes changes. Not counted in the rate.
EQUIVALENT: dict[str, list[tuple[str, str, str, tuple[str, ...]]]] = {
    "partitions": [
        (
            "without the type, every value takes the uncached path, to the same key",
            "partition_key",
            "kind = type(partition)",
            ("kind = None",),
        ),
        (
            "the type name keeps equal values of different types apart in the cache, and no "
            "two cached scalar types have equal values (bool never reaches the cache; a date "
            "never equals a datetime)",
            "partition_key",
            "return _scalar_key(kind.__name__, partition)",
            ("return _scalar_key(None, partition)",),
        ),
        (
            "an odd number of items is refused on the line above: the halves always match",
            "_decode_mapping",
            "return dict(zip(items[::2], items[1::2], strict=True)), i",
            (
                "return dict(zip(items[::2], items[1::2], strict=None)), i",
                "return dict(zip(items[::2], items[1::2], )), i",
                "return dict(zip(items[::2], items[1::2], strict=False)), i",
            ),
        ),
        (
            "an unknown tag 'X' then decodes to None, which re-encodes as ~n, not the key: "
            "refused as not canonical either way",
            "_decode_tagged",
            'if tag in "en":',
            ('if tag in "XXenXX":',),
        ),
        (
            "codec names are case-insensitive",
            "_decode_text",
            'return raw.decode("utf-8", "surrogatepass"), i',
            ('return raw.decode("UTF-8", "surrogatepass"), i',),
        ),
        (
            "codec names are case-insensitive",
            "_encode_text",
            'out.extend(f"~{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))',
            ('out.extend(f"~{byte:02X}" for byte in char.encode("UTF-8", "surrogatepass"))',),
        ),
    ],
    "transaction": [
        (
            "kept defaults to False",
            "_asset",
            'self.changes.append(Change(*key, "failed", missing, kept=False))',
            ('self.changes.append(Change(*key, "failed", missing, ))',),
        ),
        (
            "kept defaults to False",
            "_drop_orphans",
            'self.changes.append(Change(Kind.ASSET, orphan.name, "failed", reason, kept=False))',
            ('self.changes.append(Change(Kind.ASSET, orphan.name, "failed", reason, ))',),
        ),
        (
            "the default is never used: the declarations come first (run()), and each change "
            "they make is of a declaration in the order",
            "_declarations",
            "self.changes.sort(key=lambda change: position.get((change.kind, change.name), -1))",
            (
                "self.changes.sort(key=lambda change: position.get((change.kind, change.name), "
                "None))",
                "self.changes.sort(key=lambda change: position.get((change.kind, change.name), ))",
                "self.changes.sort(key=lambda change: position.get((change.kind, change.name), "
                "+1))",
                "self.changes.sort(key=lambda change: position.get((change.kind, change.name), "
                "-2))",
            ),
        ),
    ],
    "registry": [
        (
            "a plugin's config defaults to {} for None",
            "fallback_entry",
            "return Entry(kind, DEFAULT, plugin({}), plugin=info.fallback)",
            ("return Entry(kind, DEFAULT, plugin(None), plugin=info.fallback)",),
        ),
        (
            "only the first close match is shown",
            "_not_found",
            "hint = difflib.get_close_matches(str(name), declared, n=1)",
            (
                "hint = difflib.get_close_matches(str(name), declared, n=2)",
                "hint = difflib.get_close_matches(str(name), declared, )",
            ),
        ),
    ],
    "config": [
        (
            "None is as false as False",
            "secret_keys",
            'return _marked_keys(schema, "secret", path, dicts_only=False)',
            ('return _marked_keys(schema, "secret", path, dicts_only=None)',),
        ),
        (
            "a key ending in _key also holds the word 'key', which the word rule finds",
            "is_secret_key",
            'if any(part in lowered for part in _SECRET_PARTS) or lowered.endswith("_key"):',
            (
                "if any(part in lowered for part in _SECRET_PARTS) or "
                'lowered.endswith("XX_keyXX"):',
                'if any(part in lowered for part in _SECRET_PARTS) or lowered.endswith("_KEY"):',
            ),
        ),
    ],
    "memory_coordinators": [
        (
            "config_schema is {}: the host only ever passes an empty config, and Plugin keeps "
            "{} for None",
            "__init__",
            "super().__init__(config)",
            ("super().__init__(None)",),
        ),
        (
            "a failed branch's error is kept but no method returns it",
            "fail_branch",
            'return self._finish(execution_id, branch, "failed", error)',
            ('return self._finish(execution_id, branch, "failed", None)',),
        ),
        (
            "None is as false as False, and a failed key's error is kept but never returned",
            "fail",
            "return self._record(barrier_id, str(key), False, error)",
            (
                "return self._record(barrier_id, str(key), None, error)",
                "return self._record(barrier_id, str(key), False, None)",
            ),
        ),
        (
            _NO_FAILURES_EXCEEDED,
            "retry_failed",
            'if not keys and b.state not in ("threshold_exceeded", "cancelled"):',
            (
                'if not keys and b.state not in ("XXthreshold_exceededXX", "cancelled"):',
                'if not keys and b.state not in ("THRESHOLD_EXCEEDED", "cancelled"):',
            ),
        ),
        (
            "settle() never runs while every branch is pending: schedule_branches() marks "
            "them running first, and a finished branch is not pending",
            "settle",
            'elif any(s != "pending" for s in states):',
            (
                'elif any(s != "XXpendingXX" for s in states):',
                'elif any(s != "PENDING" for s in states):',
            ),
        ),
        (
            "a failed execution settles to failed again: its failed required branch stays",
            "settle",
            'if self.state in ("complete", "failed"):',
            (
                'if self.state in ("complete", "XXfailedXX"):',
                'if self.state in ("complete", "FAILED"):',
            ),
        ),
    ],
    "sqlite_scatter": [
        (
            "one more query for an unknown key when every row was new: it finds none",
            "_add_many",
            "if added < len(rows):",
            ("if added <= len(rows):",),
        ),
        (
            "the flag only splits completions from failures, and 2 is as true as 1",
            "_encode",
            'for succeeded, values, noun in ((1, completed, "result"), (0, failed, "error")):',
            ('for succeeded, values, noun in ((2, completed, "result"), (0, failed, "error")):',),
        ),
        (
            "the bulk insert of failures is a shortcut: without it they go one by one under "
            "the same rule, to the same outcome",
            "_add_outcomes",
            'bulk = tally.state == "pending" and not threshold_exceeded(',
            (
                'bulk = tally.state != "pending" and not threshold_exceeded(',
                'bulk = tally.state == "XXpendingXX" and not threshold_exceeded(',
                'bulk = tally.state == "PENDING" and not threshold_exceeded(',
            ),
        ),
        (
            "the bulk insert of failures is a shortcut (see above)",
            "_add_outcomes",
            'bulk = tally.state == "pending" and not threshold_exceeded(\n'
            "tally.failed + len(failures), tally.total, tally.tolerated, final=tally.final\n)",
            ("bulk = None",),
        ),
        (
            "the bulk insert of failures is a shortcut (see above); with final=True it is "
            "taken less often, never wrongly",
            "_add_outcomes",
            "tally.failed + len(failures), tally.total, tally.tolerated, final=tally.final",
            ("tally.failed + len(failures), tally.total, None, final=tally.final",),
        ),
        (
            "the bulk insert of failures is a shortcut (see above); with final=True it is "
            "taken less often, never wrongly",
            "_add_outcomes",
            "tally.failed + len(failures), tally.total, tally.tolerated, final=tally.final\n)",
            ("tally.failed + len(failures), tally.total, tally.tolerated, )",),
        ),
        ("None is as false as 0", "_add_outcomes", "tally.count(0)", ("tally.count(None)",)),
        (
            "the state is written only where the stored one is still pending (_FINISH's "
            "WHERE), and cancel() returns nothing",
            "cancel",
            'tally.state = "cancelled" if tally.state == "pending" else tally.state',
            ('tally.state = "cancelled" if (tally.state == "pending") or True else tally.state',),
        ),
        (
            _TOLERATED_CHECKED,
            "create_barrier",
            'None if tolerated is None else _json.dumps(tolerated, "tolerated_failures"),',
            (
                "None if (tolerated is None) and False else _json.dumps(tolerated, "
                '"tolerated_failures"),',
                "None if tolerated is None else _json.dumps(tolerated, None),",
                'None if tolerated is None else _json.dumps(tolerated, "XXtolerated_failuresXX"),',
                'None if tolerated is None else _json.dumps(tolerated, "TOLERATED_FAILURES"),',
            ),
        ),
        (
            _TOLERATED_CHECKED,
            "set_tolerated_failures",
            'text = None if tolerated is None else _json.dumps(tolerated, "tolerated_failures")',
            (
                "text = None if (tolerated is None) and False else _json.dumps(tolerated, "
                '"tolerated_failures")',
                "text = None if tolerated is None else _json.dumps(tolerated, None)",
                "text = None if tolerated is None else _json.dumps(tolerated, "
                '"XXtolerated_failuresXX")',
                "text = None if tolerated is None else _json.dumps(tolerated, "
                '"TOLERATED_FAILURES")',
            ),
        ),
        (
            "chunks one key apart overlap, but find the same keys",
            "finished_keys",
            "for start in range(0, len(wanted), _CHUNK):",
            ("for start in range(0, len(wanted), ):",),
        ),
        (
            _SQL_CASE,
            "load_checkpoint",
            '"SELECT checkpoint FROM scatter_barriers WHERE barrier_id = ?", (barrier_id,)',
            (
                '"select checkpoint from scatter_barriers where barrier_id = ?", (barrier_id,)',
                '"SELECT CHECKPOINT FROM SCATTER_BARRIERS WHERE BARRIER_ID = ?", (barrier_id,)',
            ),
        ),
        (
            _SQL_CASE,
            "set_tolerated_failures",
            '"UPDATE scatter_barriers SET tolerated = ? WHERE barrier_id = ?", (text, barrier_id)',
            (
                '"update scatter_barriers set tolerated = ? where barrier_id = ?", '
                "(text, barrier_id)",
                '"UPDATE SCATTER_BARRIERS SET TOLERATED = ? WHERE BARRIER_ID = ?", '
                "(text, barrier_id)",
            ),
        ),
        (
            _NO_FAILURES_EXCEEDED,
            "retry_failed",
            'if not keys and tally.state not in ("threshold_exceeded", "cancelled"):',
            (
                'if not keys and tally.state not in ("XXthreshold_exceededXX", "cancelled"):',
                'if not keys and tally.state not in ("THRESHOLD_EXCEEDED", "cancelled"):',
            ),
        ),
        (
            "count() is called for failures only: completions are counted in bulk",
            "count",
            "self.completed += 1",
            ("self.completed = 1", "self.completed -= 1", "self.completed += 2"),
        ),
    ],
    "sqlite_parallel": [
        (
            "a failed execution settles to failed again: only _settled writes 'failed', for a "
            "failed required branch, and a branch's outcome and optional flag never change",
            "_settled",
            'if state in ("complete", "failed"):',
            (
                'if state in ("complete", "XXfailedXX"):',
                'if state in ("complete", "FAILED"):',
            ),
        ),
        (
            "_settle runs after a branch left pending (schedule_branches marks every pending "
            "branch running first, _finish finishes one); only an unknown branch leaves them "
            "all pending, and its NotFound rolls back the transaction and what it settled",
            "_settled",
            'if any(s != "pending" for s in states):',
            (
                'if any(s != "XXpendingXX" for s in states):',
                'if any(s != "PENDING" for s in states):',
            ),
        ),
        (
            "every branch pending never reaches _settle's result (see above)",
            "_settled",
            'return "pending"',
            ('return "XXpendingXX"', 'return "PENDING"'),
        ),
        (
            _SQL_CASE,
            "_state_of",
            '"SELECT state FROM parallel_executions WHERE execution_id = ?", (execution_id,)',
            (
                '"select state from parallel_executions where execution_id = ?", (execution_id,)',
                '"SELECT STATE FROM PARALLEL_EXECUTIONS WHERE EXECUTION_ID = ?", (execution_id,)',
            ),
        ),
    ],
    "postgres_parallel": [
        (
            "a failed execution settles to failed again: only _settle writes 'failed', for a "
            "failed required branch, and a branch's outcome and required flag never change",
            "_settled",
            'if current in ("complete", "failed"):',
            (
                'if current in ("complete", "XXfailedXX"):',
                'if current in ("complete", "FAILED"):',
            ),
        ),
        (
            "_settle runs after a branch left pending: schedule_branches marks every pending "
            "branch running first; _finish finishes one, or raises NotFound for an unknown "
            "branch before settling",
            "_settled",
            'if any(state != "pending" for state in states):',
            (
                'if any(state != "XXpendingXX" for state in states):',
                'if any(state != "PENDING" for state in states):',
            ),
        ),
        (
            "every branch pending never reaches _settle (see above)",
            "_settled",
            'return "pending"',
            ('return "XXpendingXX"', 'return "PENDING"'),
        ),
        (
            _SQL_CASE,
            "status",
            'self.sql("SELECT status FROM {schema}.parallel_executions WHERE execution_id = %s"),',
            (
                'self.sql("select status from {schema}.parallel_executions '
                'where execution_id = %s"),',
            ),
        ),
    ],
    "sqlite_routing": [
        (
            _FIVE_COLUMNS,
            "to_output",
            "return dict(zip(names, rows[0], strict=True))",
            (
                "return dict(zip(names, rows[0], strict=None))",
                "return dict(zip(names, rows[0], ))",
                "return dict(zip(names, rows[0], strict=False))",
            ),
        ),
    ],
    "postgres_routing": [
        (
            _FIVE_COLUMNS,
            "to_output",
            "return dict(zip(names, row, strict=True))",
            (
                "return dict(zip(names, row, strict=None))",
                "return dict(zip(names, row, ))",
                "return dict(zip(names, row, strict=False))",
            ),
        ),
    ],
    "postgres_scatter": [
        (
            _TOLERATED_CHECKED,
            "create_barrier",
            'None if tolerated is None else dumps(tolerated, "tolerated_failures"),',
            (
                "None if (tolerated is None) and False else "
                'dumps(tolerated, "tolerated_failures"),',
                "None if tolerated is None else dumps(tolerated, None),",
                'None if tolerated is None else dumps(tolerated, "XXtolerated_failuresXX"),',
                'None if tolerated is None else dumps(tolerated, "TOLERATED_FAILURES"),',
            ),
        ),
        (
            _TOLERATED_CHECKED,
            "set_tolerated_failures",
            'text = None if tolerated is None else dumps(tolerated, "tolerated_failures")',
            (
                "text = None if (tolerated is None) and False else "
                'dumps(tolerated, "tolerated_failures")',
                "text = None if tolerated is None else dumps(tolerated, None)",
                'text = None if tolerated is None else dumps(tolerated, "XXtolerated_failuresXX")',
                'text = None if tolerated is None else dumps(tolerated, "TOLERATED_FAILURES")',
            ),
        ),
        (
            "x >= 0 here, where int(x / 100) is x // 100 unless the division rounds up to a "
            "whole number; a search of 400,000 thresholds just under one found none, and the "
            "property test holds for both",
            "failures_before_trip",
            'trip = int(float(tolerated["percent"]) * self.total // 100) + 1',
            ('trip = int(float(tolerated["percent"]) * self.total / 100) + 1',),
        ),
        (
            "with no failure tolerated the first one trips the barrier, so a pending barrier "
            "has none failed and 1 - 0 == 1 + 0",
            "failures_before_trip",
            "return 1 - self.failed",
            ("return 1 + self.failed",),
        ),
        (
            "one more query for an unknown key when every outcome counted: it finds none",
            "record_outcomes",
            "if n_done < len(done) or n_lost < len(lost):",
            (
                "if n_done <= len(done) or n_lost < len(lost):",
                "if n_done < len(done) or n_lost <= len(lost):",
            ),
        ),
        (
            "exactly `room` failures: the mutant drops those no longer pending first, which "
            "the conditional UPDATE would not count anyway",
            "_within_trip",
            "if room is None or len(failures) <= room:",
            ("if room is None or len(failures) < room:",),
        ),
        (
            "the server-side cursor's fetch size: rows stream in batches of another size",
            "iter_results",
            "def iter_results(self, barrier_id: str, *, batch_size: int = 2000) -> "
            "Iterator[tuple[str, Any]]:",
            (
                "def iter_results(self, barrier_id: str, *, batch_size: int = 2001) -> "
                "Iterator[tuple[str, Any]]:",
            ),
        ),
        (
            _SQL_CASE,
            "load_checkpoint",
            'self.sql("SELECT checkpoint FROM {schema}.scatter_barriers WHERE barrier_id = %s"),',
            (
                'self.sql("select checkpoint from {schema}.scatter_barriers '
                'where barrier_id = %s"),',
            ),
        ),
        (
            _NO_FAILURES_EXCEEDED,
            "retry_failed",
            'if not keys and barrier.status not in ("threshold_exceeded", "cancelled"):',
            (
                'if not keys and barrier.status not in ("XXthreshold_exceededXX", "cancelled"):',
                'if not keys and barrier.status not in ("THRESHOLD_EXCEEDED", "cancelled"):',
            ),
        ),
    ],
    "runtime_dispatch": [
        (
            "before the first read sets it, reader_done is read only as `not reader_done` (None "
            "is as false as False) and as final= of a threshold judged at 0 failures, which "
            "threshold_exceeded() answers without reading final",
            "__init__",
            "self.reader_done = False",
            ("self.reader_done = None",),
        ),
        (
            _ONLY_TRUTH,
            "__init__",
            "self.enforce_tolerated = False  # the barrier kept its threshold: the runtime judges",
            (
                "self.enforce_tolerated = None  # the barrier kept its threshold: the runtime "
                "judges",
            ),
        ),
        (
            _ONLY_TRUTH,
            "_tune",
            "self.enforce_tolerated = False",
            ("self.enforce_tolerated = None",),
        ),
        (_ONLY_TRUTH, "_check_threshold", "early = False", ("early = None",)),
        (
            "retune sequence numbers start at 1 (SQLite AUTOINCREMENT): neither 0 nor None "
            "equals one",
            "__init__",
            "self.tuning_seq = 0",
            ("self.tuning_seq = None",),
        ),
        (
            "execute() tunes with force=True before anything reads tuned_at, and that sets it",
            "__init__",
            "self.tuned_at = 0.0",
            ("self.tuned_at = None", "self.tuned_at = 1.0"),
        ),
        (
            "the total is used only with final=True, when the reader counted its items; one "
            "that counts 0 yields none, so no failure is buffered against a total of 0 (the "
            "only value `or` changes); a reader whose count() lies breaks its contract",
            "_record_due",
            "self.total or 0,",
            ("self.total or 1,",),
        ),
    ],
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
    equivalent: list[tuple[str, str]] = field(default_factory=list)  # (mutant, reason)

    @property
    def total(self) -> int:
        return (
            self.killed
            + self.survived
            + self.no_tests
            + self.timeout
            + self.other
            + len(self.equivalent)
        )

    @property
    def rate(self) -> float:
        # A timeout is a kill (the mutant made the tests hang); "no tests" is a survivor;
        # an equivalent mutant changes no behaviour, so it counts neither way. A mutant
        # mutmut could not check (its run broke) is no kill: a broken run reads as one.
        counted = self.total - len(self.equivalent)
        return (self.killed + self.timeout) / counted if counted else 0.0


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
    configure(work / "pyproject.toml", module, tests, integration=name in WITH_POSTGRES)
    started = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(os.cpu_count() or 2)]
    print(f"{name}: mutating flowstone_host/{module} against {' '.join(tests)}", flush=True)
    log = work / "mutmut.log"
    with contextlib.ExitStack() as stack, log.open("w") as out:
        if name in WITH_POSTGRES:
            from postgres_server import ENV_DSN, postgres_server  # tests/ is sys.path[0]

            env[ENV_DSN] = stack.enter_context(postgres_server())
        subprocess.run(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    outcome = collect(name, work / "mutants" / "flowstone_host" / f"{module}.meta")
    judge(outcome, work)
    outcome.seconds = time.monotonic() - started
    print(line(outcome), flush=True)
    if outcome.total == 0:
        print(f"  no mutants were checked; see {log.relative_to(ROOT)}")
    return outcome


def configure(pyproject: Path, module: str, tests: list[str], *, integration: bool) -> None:
    """Point the copy's ``[tool.mutmut]`` at one module and its tests (``integration``:
    those marked so too), and add :data:`EXCLUDED` to its ``do_not_mutate_patterns``."""
    text = pyproject.read_text()
    if integration:
        text, count = re.subn(r', "-m", "not integration"\]$', "]", text, flags=re.M)
        if count != 1:
            raise SystemExit('pytest_add_cli_args needs to end with "-m", "not integration"')
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


def judge(outcome: Outcome, work: Path) -> None:
    """Move the survivors that :data:`EQUIVALENT` describes to ``outcome.equivalent``."""
    entries = EQUIVALENT.get(outcome.module, [])
    if not entries:
        return
    kept = []
    for key in outcome.survivors:
        function, before, after = _diff(key, work)
        reason = next(
            (
                why
                for why, f, b, afters in entries
                if (f, b) == (function, before) and after in afters
            ),
            None,
        )
        if reason is None:
            kept.append(key)
        else:
            outcome.equivalent.append((key, reason))
            outcome.survived -= 1
    outcome.survivors = kept


def _diff(key: str, work: Path) -> tuple[str, str, str]:
    """Return a mutant's function and its lines before and after, as EQUIVALENT holds them."""
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", key], cwd=work, capture_output=True, text=True
    ).stdout.splitlines()
    before = [s[1:].strip() for s in shown if s.startswith("-") and not s.startswith("---")]
    after = [s[1:].strip() for s in shown if s.startswith("+") and not s.startswith("+++")]
    function = key.rsplit(".", 1)[-1].split("__mutmut_")[0]
    function = function.split("ǁ")[-1] if "ǁ" in function else function.removeprefix("x_")
    return function, "\n".join(before), "\n".join(after)


def line(o: Outcome) -> str:
    return (
        f"{o.module}: {o.rate:.1%} killed ({o.killed} killed, {o.timeout} timed out, "
        f"{o.survived} survived, {o.no_tests} without tests, {len(o.equivalent)} equivalent, "
        f"{o.other} not checked; "
        f"{o.seconds:.0f} s)"
    )


def summary(outcomes: list[Outcome]) -> str:
    rows = [
        "| module | mutants | killed | timed out | survived | no tests | equivalent | kill rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for o in outcomes:
        module = MODULES[o.module][0]
        rows.append(
            f"| `{module}` | {o.total} | {o.killed} | {o.timeout} | {o.survived} | "
            f"{o.no_tests} | {len(o.equivalent)} | {o.rate:.1%} |"
        )
    survivors = [f"- `{key}`" for o in outcomes for key in o.survivors]
    equivalent = [f"- `{key}`: {why}" for o in outcomes for key, why in o.equivalent]
    return (
        "\n".join(
            [
                *rows,
                "",
                "Survivors:",
                "",
                *(survivors or ["- none"]),
                "",
                "Equivalent (not counted; reasons in tests/mutate.py):",
                "",
                *(equivalent or ["- none"]),
            ]
        )
        + "\n"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
