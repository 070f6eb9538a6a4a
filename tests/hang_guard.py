"""A hung test fails, a clean-up hung after it fails too, and a hang no signal ends stops
the run with every thread's stack instead of holding CI to its own limit.

pytest-timeout (``timeout`` in ``[tool.pytest.ini_options]``, method ``signal``) raises
``Failed`` in the main thread once, when a test's setup, call and teardown outlast the limit.
Two gaps remained, both ways for one hung test to hang the whole run with no message:

- Its timer is cancelled at ``pytest_exception_interact``, that is at the test's first
  failure (the timeout's own ``Failed``, or any failed assertion): the teardown that follows
  runs unguarded. A teardown that joins a worker which never ends, waits for a child that
  never exits or stops a server that does not answer then blocks for ever.
- It fires once. The clean-up the ``Failed`` unwinds through often blocks on the very thing
  that hung: leaving a ``ThreadPoolExecutor`` block joins its threads, ``asyncio.run`` waits
  for its default executor's threads.

This plugin arms the timer in pytest-timeout's place (its ``pytest_timeout_set_timer``
hook) and keeps it until the test's protocol ends: after the first alarm it repeats every
:data:`REPEAT_S` seconds, so each blocked clean-up step fails in turn (reported as the
test's error) and the run goes on. :mod:`faulthandler`, from a C thread that needs neither
the GIL nor a signal, dumps every thread's stack and exits with status 1 when a test is
still running :data:`BACKSTOP_S` after its limit (C code that ignores signals), or when
the interpreter's exit, which joins the non-daemon threads, has not ended :data:`EXIT_S`
after it began (a thread nothing ends). ``--pdb`` and breakpoints disarm it.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import pytest

#: Seconds between the alarms that follow the first one while the test has not finished.
REPEAT_S = 20.0
#: Seconds past the limit after which the run ends with every thread's stack.
BACKSTOP_S = 150.0
#: Seconds the process may take to exit after the last test (a thread nothing ends would
#: hold the interpreter's exit, which joins non-daemon threads, for ever).
EXIT_S = 60.0

_STDERR = pytest.StashKey[int]()
_disarm: Callable[[], None] = lambda: None  # noqa: E731 - replaced per test


def pytest_configure(config: pytest.Config) -> None:
    # Output capture is suspended while plugins configure: fd 2 is the real stderr here.
    config.stash[_STDERR] = os.dup(2)


def pytest_unconfigure(config: pytest.Config) -> None:
    _disarm()
    fd = config.stash[_STDERR]  # left open: faulthandler writes to it if the exit hangs

    def arm_exit_backstop() -> None:
        faulthandler.dump_traceback_later(EXIT_S, exit=True, file=fd)

    # At the interpreter's exit, before it joins the non-daemon threads; not now: a tool
    # that runs pytest in its own process (mutmut) goes on living after the run.
    threading._register_atexit(arm_exit_backstop)  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """Arm the repeating alarm and the backstop instead of pytest-timeout's own timer.

    Returns ``None`` (pytest-timeout arms its own timer) for the ``thread`` method or off
    the main thread, where no signal can be delivered to the test.
    """
    global _disarm
    if settings.method != "signal" or threading.current_thread() is not threading.main_thread():
        return None
    from pytest_timeout import is_debugging, timeout_sigalrm

    fired = 0

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True
        nonlocal fired
        fired += 1
        if fired == 1:
            timeout_sigalrm(item, settings)  # every thread's stack, then Failed in the test
        elif not is_debugging():
            pytest.fail(
                f"Timeout (>{settings.timeout:g}s) from pytest-timeout, and its clean-up "
                f"still blocked {(fired - 1) * REPEAT_S:g} s later (stacks above, at the "
                "timeout)"
            )

    def disarm() -> None:
        global _disarm
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        faulthandler.cancel_dump_traceback_later()
        _disarm = lambda: None  # noqa: E731

    # Not item.cancel_timeout: pytest-timeout cancels that at pytest_exception_interact,
    # that is at the first failure of the test, which left a hung teardown unguarded.
    _disarm = disarm
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout, REPEAT_S)
    faulthandler.dump_traceback_later(
        settings.timeout + BACKSTOP_S, exit=True, file=item.config.stash[_STDERR]
    )
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        _disarm()


def pytest_exception_interact(node: pytest.Item | pytest.Collector) -> None:
    if node.config.getoption("usepdb", False):
        _disarm()  # a person debugs post mortem


def pytest_enter_pdb() -> None:
    _disarm()  # a breakpoint: no timeout while a person debugs
