"""tests/hang_guard.py: a hung test or clean-up fails its test, and the run goes on or ends.

Each case runs pytest in a subprocess on a small test file, with a 1 s limit and the
guard's repeat, backstop and exit delays shortened by the inner conftest.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parent

CONFTEST = """
import hang_guard

hang_guard.REPEAT_S = 1.0
hang_guard.BACKSTOP_S = 2.0
hang_guard.EXIT_S = 2.0
"""


def _run(pytester: pytest.Pytester, source: str) -> tuple[pytest.RunResult, float]:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_hangs=source)
    pytester.makeini("[pytest]\ntimeout = 1\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p", "hang_guard", "-p", "no:randomly", "-p", "no:cacheprovider", timeout=60
    )
    return result, time.monotonic() - started


@pytest.fixture(autouse=True)
def _guard_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(TESTS))


def test_hung_clean_ups_fail_their_test_and_the_next_test_runs(pytester: pytest.Pytester) -> None:
    result, took = _run(
        pytester,
        """
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

RELEASE = threading.Event()

@pytest.fixture
def stuck():
    yield
    threading.Event().wait()

def test_fails_then_hangs(stuck):
    assert 1 == 2

def test_pool_hangs():
    try:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(RELEASE.wait).result()
    finally:
        RELEASE.set()

def test_after():
    pass
""",
    )
    result.assert_outcomes(failed=2, passed=1, errors=1)
    # pytest-timeout alone cancels its timer at a test's first failure: this teardown blocked.
    result.stdout.fnmatch_lines(["ERROR test_hangs.py::test_fails_then_hangs - Failed: Timeout*"])
    # Its one alarm unwinds into the pool's shutdown, which joins the hung thread.
    result.stdout.fnmatch_lines(
        ["E * Failed: Timeout (>1s) from pytest-timeout, and its clean-up still blocked 1 s*"]
    )
    assert took < 30


def test_a_thread_that_holds_the_exit_ends_the_run_with_its_stack(
    pytester: pytest.Pytester,
) -> None:
    result, took = _run(
        pytester,
        """
import threading

def test_leaves_a_thread():
    threading.Thread(target=threading.Event().wait, name="forever").start()
""",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*1 passed*"])
    result.stderr.fnmatch_lines(["Timeout (0:00:02)!", "*in run*"])
    assert took < 30


def test_a_hang_that_ignores_signals_ends_the_run_naming_the_test(
    pytester: pytest.Pytester,
) -> None:
    result, took = _run(
        pytester,
        """
import signal
import sys
import time

def test_deaf():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(60)
""",
    )
    assert result.ret == 1
    result.stderr.fnmatch_lines(["Timeout (0:00:03)!", "*test_hangs.py*in test_deaf*"])
    assert took < 30


def test_a_tool_running_pytest_in_its_own_process_outlives_the_exit_backstop(
    pytester: pytest.Pytester,
) -> None:
    # mutmut calls pytest.main() and goes on: the backstop is for the interpreter's exit.
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_quick="def test_quick():\n    pass\n")
    script = pytester.makepyfile(
        tool="""
import sys
import sys
import time

import pytest

code = pytest.main(["-q", "-p", "hang_guard", "-p", "no:randomly", "test_quick.py"])
time.sleep(4)  # twice the exit backstop's delay
print("still running, pytest said", int(code))
"""
    )
    result = pytester.run(sys.executable, str(script), timeout=60)
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["still running, pytest said 0"])
