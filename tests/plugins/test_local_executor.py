"""The local thread-pool executor."""

from __future__ import annotations

import threading

import pytest

from flowstone_host import Conflict
from flowstone_host.plugins.local_executor import LocalExecutor


def test_runs_work_and_propagates_exceptions() -> None:
    executor = LocalExecutor({"max_workers": 2})
    assert executor.submit(pow, 2, 10).result(timeout=5) == 1024
    with pytest.raises(ZeroDivisionError):
        executor.submit(lambda: 1 / 0).result(timeout=5)
    executor.close()


def test_never_runs_more_than_max_workers_at_once() -> None:
    executor = LocalExecutor({"max_workers": 2})
    lock, running, peak = threading.Lock(), [0], [0]
    gate = threading.Barrier(2, timeout=5)

    def work() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait()  # two must run together, a third cannot join them
        with lock:
            running[0] -= 1

    futures = [executor.submit(work) for _ in range(6)]
    for future in futures:
        future.result(timeout=5)
    executor.close()
    assert peak[0] == 2


def test_closed_executor_refuses_work_after_finishing_what_it_had() -> None:
    executor = LocalExecutor({})
    future = executor.submit(lambda: "done")
    executor.close()
    assert future.result(timeout=1) == "done"
    with pytest.raises(Conflict):
        executor.submit(lambda: None)


def test_process_kind_runs_in_other_processes_and_reports_errors() -> None:
    import os

    from flowstone_host import NotFound
    from tests.plugins import executor_work

    executor = LocalExecutor({"kind": "process", "max_workers": 2})
    try:
        pids = {executor.submit(executor_work.pid).result(timeout=60) for _ in range(4)}
        assert os.getpid() not in pids
        assert executor.submit(pow, 3, 4).result(timeout=30) == 81
        with pytest.raises(NotFound) as caught:
            executor.submit(executor_work.missing, "k1").result(timeout=30)
        assert caught.value.code == "not_found" and caught.value.details == {"key": "k1"}
    finally:
        executor.close()


def test_process_kind_bounds_concurrency_by_max_workers() -> None:
    from tests.plugins import executor_work

    executor = LocalExecutor({"kind": "process", "max_workers": 2})
    try:
        futures = [executor.submit(executor_work.pid_after, 0.2) for _ in range(6)]
        assert len({f.result(timeout=60) for f in futures}) == 2
    finally:
        executor.close()


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(Conflict):
        LocalExecutor({"kind": "fiber"})
