"""The admin API under load and against slow peers and a slow host, over real sockets.

Loopback only; every test is bounded and stops by itself.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from admin_calls import call, error_code
from fakes import FakeHost

from flowstone_host.daemon.admin import AdminServer

Serve = Callable[..., AdminServer]

SLOW_CLIENTS = 200
PROBES = 50
P99_LIMIT_S = 0.2


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@contextlib.contextmanager
def slow_clients(server: AdminServer, count: int) -> Iterator[list[socket.socket]]:
    """Hold ``count`` connections: half send a header byte a second, half stall mid-header."""
    sockets = [socket.create_connection(server.address, timeout=5) for _ in range(count)]
    for sock in sockets:
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    stop = threading.Event()

    def dribble() -> None:
        while not stop.wait(1.0):
            for sock in sockets[::2]:
                with contextlib.suppress(OSError):
                    sock.sendall(b"a")

    dribbler = threading.Thread(target=dribble, daemon=True)
    dribbler.start()
    try:
        yield sockets
    finally:
        stop.set()
        dribbler.join()
        for sock in sockets:
            sock.close()


def timed_get(server: AdminServer, path: str) -> float:
    started = time.perf_counter()
    status, _, _ = call(server, "GET", path)
    elapsed = time.perf_counter() - started
    assert status == 200, path
    return elapsed


def still_open(sock: socket.socket) -> bool:
    """Whether the server has not closed ``sock`` (nothing to read, no EOF)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_probes_and_status_stay_fast_while_200_slow_clients_hang(serve: Serve) -> None:
    server = serve()  # default limits: the slow clients are neither refused nor cut off yet
    started = time.monotonic()
    with slow_clients(server, SLOW_CLIENTS) as sockets:
        time.sleep(1.5)  # the dribblers have sent a byte or two
        healthz = [timed_get(server, "/healthz") for _ in range(PROBES)]
        status = [timed_get(server, "/status") for _ in range(PROBES)]
        assert sum(still_open(sock) for sock in sockets) == SLOW_CLIENTS  # they did hang on
    assert p99(healthz) < P99_LIMIT_S, sorted(healthz)[-5:]
    assert p99(status) < P99_LIMIT_S, sorted(status)[-5:]
    assert time.monotonic() - started < 15


def test_slow_clients_are_cut_off_at_the_head_deadline(serve: Serve) -> None:
    server = serve(request_timeout=1.0)
    with slow_clients(server, 20) as sockets:
        deadline = time.monotonic() + 5
        while any(still_open(sock) for sock in sockets):
            assert time.monotonic() < deadline, "slow clients were not cut off"
            time.sleep(0.1)
        assert call(server, "GET", "/healthz")[0] == 200


def test_a_slow_host_answers_503_at_the_deadline_and_probes_still_answer(
    serve: Serve, host: FakeHost
) -> None:
    server = serve(request_timeout=0.5)
    host.gate = threading.Event()
    try:
        started = time.monotonic()
        status, _, body = call(server, "GET", "/status")
        assert (status, error_code(body)) == (503, "unavailable")
        assert 0.4 < time.monotonic() - started < 3
        assert call(server, "GET", "/healthz")[0] == 200  # the stuck call holds no probe
        assert call(server, "GET", "/readyz")[0] == 200
    finally:
        host.gate.set()


def test_requests_beyond_the_budget_wait_then_503_but_probes_do_not(
    serve: Serve, host: FakeHost
) -> None:
    server = serve(request_timeout=0.5, reload_timeout=10, max_requests=1)
    host.gate = threading.Event()
    stuck = threading.Thread(target=call, args=(server, "POST", "/reload"))
    stuck.start()
    try:
        time.sleep(0.2)  # the reload holds the budget's only slot, for up to 10 s
        started = time.perf_counter()
        assert call(server, "GET", "/healthz")[0] == 200
        assert time.perf_counter() - started < P99_LIMIT_S
        status, _, body = call(server, "GET", "/metrics")
        assert (status, error_code(body)) == (503, "unavailable")
    finally:
        host.gate.set()
        stuck.join()
    assert call(server, "GET", "/metrics")[0] == 200


def test_a_body_sent_too_slowly_is_408(serve: Serve, host: FakeHost) -> None:
    server = serve(request_timeout=0.5)
    conn = http.client.HTTPConnection(*server.address, timeout=5)
    try:
        conn.putrequest("POST", "/reload")
        conn.putheader("Content-Length", "10")
        conn.endheaders()
        conn.send(b"abc")  # seven bytes never come
        response = conn.getresponse()
        assert (response.status, error_code(response.read())) == (408, "timeout")
    finally:
        conn.close()
    assert host.triggers == []


def test_reload_has_its_own_longer_limit(serve: Serve, host: FakeHost) -> None:
    server = serve(request_timeout=0.3, reload_timeout=10)
    host.gate = threading.Event()
    opener = threading.Timer(1.0, host.gate.set)
    opener.start()
    try:
        started = time.monotonic()
        assert call(server, "POST", "/reload")[0] == 200
        assert time.monotonic() - started >= 0.9
    finally:
        opener.cancel()
        host.gate.set()


def test_stop_does_not_wait_for_a_stuck_host_call(serve: Serve, host: FakeHost) -> None:
    server = serve(request_timeout=30)
    host.gate = threading.Event()

    def ask() -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):  # cut off at stop
            call(server, "GET", "/status")

    stuck = threading.Thread(target=ask, daemon=True)
    stuck.start()
    time.sleep(0.3)
    try:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 8
    finally:
        host.gate.set()


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_the_accept_backlog_is_large(server_backlog: int) -> None:
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert server_backlog == min(2048, somaxconn)


@pytest.fixture
def server_backlog(serve: Serve) -> int:
    """The kernel's accept-queue limit of a listening admin socket (``ss``'s Send-Q)."""
    port = serve().address[1]
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[2])
