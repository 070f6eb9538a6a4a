"""The queue executor's own parts, against a real PostgreSQL with no worker running."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from flowstone_host.contracts.executor import Job
from flowstone_host.errors import ConfigError, FlowStoneError, NotSupported, Unavailable
from flowstone_host.plugins.local_executor import LocalExecutor
from flowstone_host.plugins.queue.executor import QueueExecutor, job_from
from flowstone_host.runtime.items import decode_chunk, encode_chunk
from tests.plugins.queue.cluster import Cluster

JOB = Job("run-1", "squares", "~n", "barrier-1", None, encode_chunk([("k", {"n": 1})]), 1)


@pytest.fixture
def executor(cluster: Cluster) -> Iterator[QueueExecutor]:
    found = QueueExecutor({"dsn": cluster.dsn, "stall_timeout_s": 1, "max_attempts": 2,
                           "poll_interval_s": 0.02})  # fmt: skip
    yield found
    found.close()


def _set(dsn: str, job_id: int, sql: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(sql + " WHERE id = %s", (job_id,))


def _jobs(dsn: str) -> dict[int, tuple[str, int]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT id, status::text, attempts FROM procrastinate_jobs").fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def _wait(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_jobs_are_queued_in_one_batch_carrying_only_the_job_fields(
    executor: QueueExecutor, cluster: Cluster
) -> None:
    futures = executor.enqueue([JOB, dataclasses.replace(JOB, branch="b", items="", size=1)])
    assert [f.state for f in futures] == ["queued", "queued"]
    with psycopg.connect(cluster.dsn) as conn:
        args = [row[0] for row in conn.execute("SELECT args FROM procrastinate_jobs ORDER BY id")]
    assert args[0] == dataclasses.asdict(JOB) and job_from(args[0]) == JOB
    assert args[1]["branch"] == "b"


def test_cancelling_a_queued_job_takes_it_off_the_queue(
    executor: QueueExecutor, cluster: Cluster
) -> None:
    first, second = executor.enqueue([JOB, JOB])
    assert first.cancel() and first.cancelled()
    assert _jobs(cluster.dsn)[first.job_id][0] == "cancelled"
    assert not second.done() and _jobs(cluster.dsn)[second.job_id][0] == "todo"


def test_a_job_a_worker_is_running_cannot_be_cancelled(
    executor: QueueExecutor, cluster: Cluster
) -> None:
    (future,) = executor.enqueue([JOB])
    with psycopg.connect(cluster.dsn) as conn:
        conn.execute(
            "UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (future.job_id,)
        )
    assert not future.cancel() and not future.done()
    _wait(lambda: future.state == "running")


def test_futures_resolve_from_the_queue_gone_succeeded_or_failed(
    executor: QueueExecutor, cluster: Cluster
) -> None:
    gone, failed = executor.enqueue([JOB, JOB])
    with psycopg.connect(cluster.dsn) as conn:
        conn.execute(
            "DELETE FROM procrastinate_jobs WHERE id = %s", (gone.job_id,)
        )  # as workers do
        conn.execute(
            "UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (failed.job_id,)
        )
    assert gone.result(timeout=10) is None
    with pytest.raises(FlowStoneError) as raised:
        failed.result(timeout=10)
    assert raised.value.code == "job_failed" and str(failed.job_id) in raised.value.message


def test_a_job_of_a_silent_worker_is_queued_again_then_failed_at_max_attempts(
    executor: QueueExecutor, cluster: Cluster
) -> None:
    (future,) = executor.enqueue([JOB])
    with psycopg.connect(cluster.dsn) as conn:
        silent = conn.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (NOW() - interval '1 hour')"
            " RETURNING id"
        ).fetchone()
        assert silent is not None

        def hold() -> None:
            conn.execute(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s",
                (silent[0], future.job_id),
            )
            conn.commit()

        hold()
        _wait(lambda: _jobs(cluster.dsn)[future.job_id] == ("todo", 1))  # attempt 1 spent
        assert not future.done()
        hold()
    with pytest.raises(FlowStoneError):  # attempt 2 was the last (max_attempts: 2)
        future.result(timeout=10)
    assert _jobs(cluster.dsn)[future.job_id][0] == "failed"


def test_close_fails_the_futures_still_waiting(executor: QueueExecutor) -> None:
    (future,) = executor.enqueue([JOB])
    executor.close()
    with pytest.raises(Unavailable):
        future.result(timeout=5)


def test_forged_job_arguments_are_refused() -> None:
    good = dataclasses.asdict(JOB)
    for forged in (
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "target"},
        {**good, "asset": ["a"]},
        {**good, "branch": 3},
        {**good, "size": "1"},
    ):
        with pytest.raises(FlowStoneError) as raised:
            job_from(forged)
        assert raised.value.code == "validation_error"


def test_chunks_round_trip_and_a_corrupt_one_is_refused() -> None:
    import datetime as dt

    chunk = [("a", {"at": dt.date(2024, 1, 2), "pair": (1, 2)}), ("b", [1, "x"])]
    assert decode_chunk(encode_chunk(chunk)) == chunk
    for corrupt in ("not base64!", "AAAA", encode_chunk([])[:-2] + "zz"):
        with pytest.raises(FlowStoneError):
            decode_chunk(corrupt)


def test_a_chunk_too_large_for_a_queue_row_is_refused_both_ways(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flowstone_host.runtime import items

    text = encode_chunk([("k", "x" * 1000)])
    monkeypatch.setattr(items, "MAX_CHUNK_TEXT", len(text) - 1)
    with pytest.raises(FlowStoneError, match="references"):
        encode_chunk([("k", "x" * 1000)])
    with pytest.raises(FlowStoneError, match="over"):
        decode_chunk(text)


def test_each_kind_of_executor_refuses_the_other_kind_of_work(executor: QueueExecutor) -> None:
    with pytest.raises(NotSupported):
        executor.submit(print)
    local = LocalExecutor({})
    try:
        with pytest.raises(NotSupported):
            local.enqueue([JOB])
        with pytest.raises(NotSupported):
            local.serve(lambda job, stopping: None, concurrency=1)
    finally:
        local.close()


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "procrastinate", None)  # as if not installed
    with pytest.raises(ConfigError) as raised:
        QueueExecutor({"dsn": "postgresql://nowhere/db"})
    assert "flowstone-host[distributed]" in raised.value.message
