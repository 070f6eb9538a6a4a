"""The ``/runs`` endpoints over real sockets, on a snapshot built by hand (no plugins.d)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from admin_calls import call

from flowstone_host.daemon.admin import AdminServer
from flowstone_host.daemon.run_documents import MAX_PAGE
from flowstone_host.daemon.runs import DaemonRuns
from flowstone_host.manifest.model import Asset, Scatter, freeze
from flowstone_host.registry import Snapshot
from tests.runtime import gated, helpers
from tests.runtime.helpers import POLICY, W

Serve = Callable[..., AdminServer]
G = "tests.runtime.gated:"


class Leased:
    """The host as the runs see it: a config and a lease on one snapshot."""

    def __init__(self, snapshot: Snapshot, state: Path) -> None:
        self.snapshot = snapshot
        self.config = SimpleNamespace(state_dir=state, callables=POLICY)
        self.leases = 0

    @contextlib.contextmanager
    def lease(self) -> Iterator[Snapshot]:
        self.leases += 1
        try:
            yield self.snapshot
        finally:
            self.leases -= 1


def scatter(name: str, item: str, count: int, **kw: Any) -> Asset:
    spec = Scatter(
        reader="custom",
        item=G + item,
        gather=W + "count_results",
        resolved_reader_config=freeze({"function": W + "numbers", "count": count}),
        **kw,
    )
    return Asset(name, scatter=spec)


ASSETS = [
    Asset("source", compute=W + "source"),
    Asset("plus_one", compute=W + "plus_one", deps=("source",)),
    Asset("days", compute=W + "source", partitions=freeze(["2024-01-01", "2024-01-02"])),
    scatter("waits", "wait_item", 4),
    scatter("slow", "slow_item", 5000, batch_size=10, max_concurrency=2),
]


@pytest.fixture(autouse=True)
def _gate() -> Iterator[None]:
    gated.GATE.clear()
    gated.STARTED.clear()
    yield
    gated.GATE.set()  # nothing stays blocked


@pytest.fixture
def leased(tmp_path: Path) -> Iterator[Leased]:
    yield Leased(helpers.snapshot(ASSETS, tmp_path), tmp_path)
    while helpers.OPEN:
        helpers.OPEN.pop().close()


@pytest.fixture
def runs(leased: Leased) -> Iterator[DaemonRuns]:
    daemon_runs = DaemonRuns(leased, max_in_flight=2)  # type: ignore[arg-type]
    yield daemon_runs
    gated.GATE.set()
    wait_for(lambda: not daemon_runs.in_flight(), "runs to end")
    daemon_runs.close()


@pytest.fixture
def server(serve: Serve, runs: DaemonRuns) -> AdminServer:
    return serve(runs=runs)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.01)
    return value


def post(server: AdminServer, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    data = b"" if body is None else json.dumps(body).encode()
    status, _, answer = call(server, "POST", path, headers, data)
    return status, json.loads(answer)


def get(server: AdminServer, path: str) -> tuple[int, Any]:
    status, _, answer = call(server, "GET", path)
    return status, json.loads(answer)


def finished(server: AdminServer, run_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        status, body = get(server, f"/runs/{run_id}")
        assert status == 200, body
        return body if body["status"] != "running" else None

    result: dict[str, Any] = wait_for(done, f"run {run_id} to end")
    return result


# -- starting and reading ------------------------------------------------------------------


def test_post_runs_answers_202_at_once_and_the_run_succeeds_on_its_thread(
    server: AdminServer, leased: Leased
) -> None:
    # At once: the answer comes while the run's items still wait on the closed gate (a
    # stopwatch here failed on a loaded machine without telling anything more).
    status, headers, body = call(server, "POST", "/runs", {}, b'{"asset": "waits"}')
    assert status == 202
    run_id = json.loads(body)["run_id"]
    assert headers["Location"] == f"/runs/{run_id}"
    assert json.loads(body) == {"run_id": run_id, "status": "running"}
    gated.STARTED.wait(5)
    assert leased.leases == 1  # the run holds the snapshot it was started on
    assert get(server, f"/runs/{run_id}")[1]["live"] is True
    gated.GATE.set()
    run = finished(server, run_id)
    assert run["status"] == "succeeded" and run["live"] is False
    assert run["outcome"] == {"waits": {"succeeded": 1}}
    (step,) = run["steps"]
    assert step["scatter"] == {"completed": 4, "failed": 0, "total": 4}
    # The end is recorded just before the run's thread lets go of its lease.
    wait_for(lambda: leased.leases == 0, "the run to let go of its snapshot")


def test_a_run_shows_per_asset_and_per_partition_outcomes(server: AdminServer) -> None:
    status, body = post(server, "/runs", {"assets": ["days"], "partitions": ["2024-01-02"]})
    assert status == 202
    run = finished(server, body["run_id"])
    assert run["status"] == "succeeded" and run["partitions"] == ["2024-01-02"]
    assert [(s["asset"], s["partition"], s["status"]) for s in run["steps"]] == [
        ("days", "2024-01-02", "succeeded")
    ]
    status, body = post(server, "/runs", {"asset": "plus_one", "run_id": "mine"})
    assert (status, body["run_id"]) == (202, "mine")
    run = finished(server, "mine")
    assert run["outcome"] == {"source": {"succeeded": 1}, "plus_one": {"succeeded": 1}}
    status, page = get(server, "/runs/mine?steps_limit=1")
    assert (len(page["steps"]), page["steps_total"], page["steps_next"]) == (1, 2, 1)
    rest = get(server, "/runs/mine?steps_limit=1&steps_offset=1")[1]
    assert rest["steps_next"] is None and rest["steps"][0]["asset"] == "plus_one"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (b"{}", "'asset'"),
        (b'{"asset": "source", "assets": ["source"]}', "'asset'"),
        (b'{"asset": "source", "bogus": 1}', "'bogus'"),
        (b'{"asset": "source", "concurrency": true}', "'concurrency'"),
        (b'{"asset": "source", "concurrency": 0}', "at least 1"),
        (b'{"asset": "days", "partitions": ["2024-01-01"], "missing": true}', "not both"),
        (b'{"asset": "source", "fresh": true, "run_id": "x"}', "exclude"),
        (b'{"asset": "days", "partitions": ["2030-01-01"]}', "2030-01-01"),
        (b'{"asset": "days", "range": "2024-01-02..2024-01-01"}', "ends before"),
    ],
)
def test_a_bad_request_is_400_with_a_message_naming_the_field(
    server: AdminServer, runs: DaemonRuns, body: bytes, words: str
) -> None:
    status, _, answer = call(server, "POST", "/runs", {}, body)
    error = json.loads(answer)["error"]
    assert (status, error["code"]) == (400, "validation_error"), error
    assert words in error["message"]
    assert runs.in_flight() == []


def test_an_unknown_asset_is_400_with_the_runtimes_not_found_and_a_suggestion(
    server: AdminServer, leased: Leased
) -> None:
    status, body = post(server, "/runs", {"asset": "plus_on"})
    assert (status, body["error"]["code"]) == (400, "not_found")
    assert "Did you mean 'plus_one'?" in body["error"]["message"]
    assert leased.leases == 0  # the lease taken to check it was given back


def test_unknown_runs_are_404(server: AdminServer) -> None:
    assert get(server, "/runs/nope")[0] == 404
    status, body = post(server, "/runs/nope/cancel")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_runs_beyond_the_limit_are_429_and_a_running_id_is_409(server: AdminServer) -> None:
    assert post(server, "/runs", {"asset": "waits", "run_id": "a"})[0] == 202
    status, body = post(server, "/runs", {"asset": "waits", "run_id": "a"})
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert post(server, "/runs", {"asset": "waits", "fresh": True})[0] == 202
    status, body = post(server, "/runs", {"asset": "source"})
    assert (status, body["error"]["code"]) == (429, "unavailable")
    assert body["error"]["details"] == {"in_flight": 2, "limit": 2}
    gated.GATE.set()
    finished(server, "a")
    wait_for(lambda: post(server, "/runs", {"asset": "source"})[0] == 202, "a free slot")


# -- listing -------------------------------------------------------------------------------


def test_get_runs_pages_newest_first_and_filters(server: AdminServer) -> None:
    ids = []
    for n in range(5):
        asset = "source" if n % 2 else "plus_one"
        ids.append(post(server, "/runs", {"asset": asset, "run_id": f"r{n}"})[1]["run_id"])
        finished(server, ids[-1])
    seen, after = [], ""
    while True:
        status, page = get(server, f"/runs?limit=2{after}")
        assert status == 200 and len(page["runs"]) <= 2
        seen += [r["run_id"] for r in page["runs"]]
        if page["next"] is None:
            break
        after = f"&after={page['next']}"
    assert seen == ids[::-1]
    assert "steps" not in page["runs"][0]
    only = get(server, "/runs?asset=source")[1]["runs"]
    assert [r["run_id"] for r in only] == ["r3", "r1"]
    assert get(server, "/runs?status=failed")[1] == {"runs": [], "next": None}
    assert len(get(server, "/runs?status=succeeded&limit=200")[1]["runs"]) == 5


@pytest.mark.parametrize(
    "query", ["limit=0", f"limit={MAX_PAGE + 1}", "limit=abc", "limit=-1", "status=bogus"]
)
def test_paging_out_of_bounds_is_400(server: AdminServer, query: str) -> None:
    status, body = get(server, f"/runs?{query}")
    assert (status, body["error"]["code"]) == (400, "validation_error")


def test_paging_after_an_unknown_run_is_404(server: AdminServer) -> None:
    assert get(server, "/runs?after=nope")[0] == 404


# -- cancel --------------------------------------------------------------------------------


def test_cancel_stops_a_slow_scatter_and_records_cancelled(server: AdminServer) -> None:
    run_id = post(server, "/runs", {"asset": "slow"})[1]["run_id"]
    gated.STARTED.wait(5)
    status, body = post(server, f"/runs/{run_id}/cancel")
    assert (status, body) == (202, {"run_id": run_id, "status": "cancelling"})
    began = time.monotonic()
    run = finished(server, run_id)
    assert time.monotonic() - began < 2.0
    assert run["status"] == "cancelled" and run["error"]["code"] == "cancelled"
    assert run["outcome"] == {"slow": {"cancelled": 1}}
    status, body = post(server, f"/runs/{run_id}/cancel")
    assert (status, body["error"]["code"]) == (409, "conflict")  # finished already


# -- the guard -----------------------------------------------------------------------------


def test_starting_or_cancelling_needs_the_token_when_one_is_set(
    serve: Serve, runs: DaemonRuns
) -> None:
    server = serve(token="t0k", runs=runs)
    status, body = post(server, "/runs", {"asset": "source"})
    assert (status, body["error"]["code"]) == (401, "permission_denied")
    assert post(server, "/runs/x/cancel")[0] == 401
    status, body = post(server, "/runs", {"asset": "source"}, Authorization="Bearer t0k")
    assert status == 202
    assert get(server, f"/runs/{body['run_id']}")[0] == 200  # reading needs none
    finished(server, body["run_id"])


def test_a_server_without_runs_answers_501(serve: Serve) -> None:
    server = serve()
    assert get(server, "/runs")[0] == 501
    assert post(server, "/runs", {"asset": "x"})[0] == 501


# -- retune --------------------------------------------------------------------------------


def test_retune_records_the_change_on_the_run(server: AdminServer) -> None:
    run_id = post(server, "/runs", {"asset": "source"})[1]["run_id"]
    finished(server, run_id)
    changes = {"max_concurrency": 8, "tolerated_failures": {"percent": 5}}
    status, event = post(server, f"/runs/{run_id}/retune", changes)
    assert status == 200
    assert event["max_concurrency"] == 8 and event["tolerated_failures"] == {"percent": 5.0}
    [recorded] = get(server, f"/runs/{run_id}")[1]["retunes"]
    assert recorded == event


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"max_concurrency": 0}, 400),
        ({"max_concurrency": "8"}, 400),
        ({"tolerated_failures": {"percent": 500}}, 400),
        ({"concurrency": 8}, 400),  # not a retune field
        ({}, 400),
        ([8], 400),
    ],
)
def test_a_bad_retune_is_refused(server: AdminServer, body: Any, status: int) -> None:
    run_id = post(server, "/runs", {"asset": "source"})[1]["run_id"]
    finished(server, run_id)
    answer, error = post(server, f"/runs/{run_id}/retune", body)
    assert (answer, error["error"]["code"]) == (status, "validation_error")


def test_retuning_an_unknown_run_is_404_and_needs_the_token(
    server: AdminServer, serve: Serve, runs: DaemonRuns
) -> None:
    assert post(server, "/runs/nope/retune", {"max_concurrency": 2})[0] == 404
    guarded = serve(token="t0k", runs=runs)
    assert post(guarded, "/runs/nope/retune", {"max_concurrency": 2})[0] == 401
