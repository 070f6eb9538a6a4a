"""The admin HTTP API, served for real on 127.0.0.1 and driven over real sockets."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable

import pytest
from admin_calls import call, error_code, raw, read_all, status_and_json
from fakes import FakeHost
from prometheus_client.parser import text_string_to_metric_families

from flowstone_host import ConfigError, NotFound, Unavailable, telemetry
from flowstone_host.daemon.address import local_url, parse_listen
from flowstone_host.daemon.admin import MAX_BODY_BYTES, AdminServer

Serve = Callable[..., AdminServer]


@pytest.fixture
def server(serve: Serve) -> AdminServer:
    return serve()


# -- endpoints ---------------------------------------------------------------------------


def test_healthz_follows_alive(server: AdminServer, host: FakeHost) -> None:
    status, headers, body = call(server, "GET", "/healthz")
    assert (status, json.loads(body)) == (200, {"alive": True})
    assert headers["Content-Type"] == "application/json"
    host.is_alive = False
    assert call(server, "GET", "/healthz")[0] == 503


def test_readyz_gives_reasons_when_not_ready(server: AdminServer, host: FakeHost) -> None:
    assert json.loads(call(server, "GET", "/readyz")[2]) == {"ready": True, "reasons": []}
    host.readiness = (False, ["resource 'pg' is unhealthy: connection refused"])
    status, _, body = call(server, "GET", "/readyz")
    assert status == 503
    assert json.loads(body)["reasons"] == ["resource 'pg' is unhealthy: connection refused"]


def test_status_is_the_hosts_document(server: AdminServer) -> None:
    status, _, body = call(server, "GET", "/status?verbose=1")
    assert status == 200
    assert json.loads(body)["declarations"][0]["name"] == "memory"


def test_metrics_parse_and_count_telemetry_events(server: AdminServer, host: FakeHost) -> None:
    meta = {"plugin_kind": "io_manager", "name": "memory"}
    for _ in range(3):
        telemetry.execute(("flowstone", "plugin", "call", "stop"), {"duration": 1_000}, meta)
    telemetry.execute(
        ("flowstone", "plugin", "call", "exception"),
        {"duration": 5},
        {**meta, "reason": NotFound("x")},
    )
    telemetry.execute(("flowstone", "reload", "stop"), {"duration": 10}, {"outcome": "ok"})
    host.metrics.set_declarations(["active", "failed"])
    status, headers, body = call(server, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    labels = (("kind", "io_manager"), ("name", "memory"))
    assert samples[("flowstone_plugin_calls_total", labels)] == 4
    assert samples[("flowstone_plugin_errors_total", (("code", "not_found"), *labels))] == 1
    assert samples[("flowstone_reloads_total", (("outcome", "ok"),))] == 1
    assert samples[("flowstone_declarations", (("state", "failed"),))] == 1


def test_reload_answers_200_or_409_with_the_report(server: AdminServer, host: FakeHost) -> None:
    status, _, body = call(server, "POST", "/reload")
    assert (status, json.loads(body)["outcome"]) == (200, "ok")
    host.report = {"ok": False, "outcome": "failed", "errors": ["plugins.d/a.yaml:3:5: bad"]}
    status, _, body = call(server, "POST", "/reload")
    assert (status, json.loads(body)) == (409, host.report)
    assert host.triggers == ["http", "http"]


def test_a_host_exception_is_a_json_500_and_the_server_carries_on(
    server: AdminServer, host: FakeHost
) -> None:
    host.fail_with = KeyError("gone")
    status, _, body = call(server, "GET", "/status")
    assert (status, error_code(body)) == (500, "not_found")
    host.fail_with = RuntimeError("bug")
    status, _, body = call(server, "POST", "/reload")
    assert (status, error_code(body)) == (500, "internal_error")
    assert call(server, "GET", "/healthz")[0] == 200


def test_head_answers_headers_only(server: AdminServer) -> None:
    status, headers, body = call(server, "HEAD", "/healthz")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0


# -- token -------------------------------------------------------------------------------


def test_post_needs_the_token_and_get_never_does(serve: Serve, host: FakeHost) -> None:
    server = serve(token="s3cret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        status, response_headers, body = call(server, "POST", "/reload", headers)
        assert (status, error_code(body)) == (401, "permission_denied")
        assert response_headers["WWW-Authenticate"] == "Bearer"
    assert host.triggers == []
    assert call(server, "POST", "/reload", {"Authorization": "bearer s3cret"})[0] == 200
    assert call(server, "GET", "/status")[0] == 200
    assert host.triggers == ["http"]


def test_an_empty_token_means_none(serve: Serve) -> None:
    assert call(serve(token=""), "POST", "/reload")[0] == 200


# -- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/nope", "/status/", "/status/../status", "/../etc/passwd", "/%2e%2e/healthz"]
)
def test_unknown_paths_are_json_404(server: AdminServer, path: str) -> None:
    status, headers, body = call(server, "GET", path)
    assert (status, error_code(body)) == (404, "not_found")
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/status", "GET, HEAD"),
        ("DELETE", "/healthz", "GET, HEAD"),
        ("GET", "/reload", "POST"),
        ("PUT", "/reload", "POST"),
    ],
)
def test_wrong_methods_are_405_with_allow(
    server: AdminServer, method: str, path: str, allow: str
) -> None:
    status, headers, body = call(server, method, path)
    assert (status, error_code(body)) == (405, "not_supported")
    assert headers["Allow"] == allow


def test_unknown_methods_are_json_501(server: AdminServer) -> None:
    status, _, body = call(server, "BREW", "/status")
    assert (status, error_code(body)) == (501, "not_supported")


# -- hostile peers -----------------------------------------------------------------------


def test_huge_bodies_are_refused_unread(server: AdminServer, host: FakeHost) -> None:
    conn = http.client.HTTPConnection(*server.address, timeout=5)
    try:
        conn.putrequest("POST", "/reload")
        conn.putheader("Content-Length", str(10**12))
        conn.endheaders()
        response = conn.getresponse()
        assert (response.status, error_code(response.read())) == (413, "validation_error")
    finally:
        conn.close()
    assert host.triggers == []


def test_a_small_body_is_accepted(server: AdminServer) -> None:
    assert call(server, "POST", "/reload", body=b"x" * MAX_BODY_BYTES)[0] == 200


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (b"Content-Length: -1\r\n", 400),
        (b"Content-Length: 1_0\r\n", 400),
        (b"Content-Length: 1\r\nContent-Length: 2\r\n", 400),
        (b"Transfer-Encoding: chunked\r\n", 411),
    ],
)
def test_bad_body_framing_is_refused(
    server: AdminServer, host: FakeHost, headers: bytes, expected: int
) -> None:
    head = b"POST /reload HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % server.address[1]
    answer = raw(server, head + headers + b"\r\n")
    status, body = status_and_json(answer)  # raw() returning means the server closed
    assert (status, body["error"]["code"]) == (expected, "validation_error")
    assert host.triggers == []


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [
        (b"\x00\xff\xfe garbage \x01\r\n\r\n", 400),
        (b"GET\r\n\r\n", 400),
        (b"GET /healthz HTTP/9.9\r\n\r\n", 505),
    ],
)
def test_garbage_request_lines_get_a_status_and_json(
    server: AdminServer, request_line: bytes, expected: int
) -> None:
    status, body = status_and_json(raw(server, request_line))
    assert status == expected
    assert body["error"]["code"] in ("validation_error", "not_supported")


def test_an_overlong_request_head_gets_431(server: AdminServer) -> None:
    status, body = status_and_json(raw(server, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"))
    assert (status, body["error"]["code"]) == (431, "validation_error")
    many = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(1_000))
    status, _ = status_and_json(raw(server, b"GET /healthz HTTP/1.1\r\n" + many + b"\r\n"))
    assert status == 431


def test_a_silent_client_is_cut_off_and_others_are_served(serve: Serve) -> None:
    server = serve(request_timeout=0.3)
    with socket.create_connection(server.address, timeout=5) as slow:
        slow.sendall(b"GET /heal")
        assert call(server, "GET", "/healthz")[0] == 200  # served meanwhile
        started = time.monotonic()
        assert read_all(slow) == b""  # closed by the server, without an answer
        assert time.monotonic() - started < 3


def test_a_client_dribbling_its_head_is_cut_off_at_the_deadline(serve: Serve) -> None:
    server = serve(request_timeout=0.5)
    with socket.create_connection(server.address, timeout=5) as slow:
        started = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            try:
                slow.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)  # a byte every 50 ms: always active, never done
        assert read_all(slow) == b""
        assert time.monotonic() - started < 2  # the deadline, not the idle timeout


def test_a_connection_beyond_the_cap_evicts_the_oldest_waiting_one(serve: Serve) -> None:
    server = serve(max_connections=2, request_timeout=5)
    with (
        socket.create_connection(server.address, timeout=5) as oldest,
        socket.create_connection(server.address, timeout=5) as newer,
    ):
        oldest.sendall(b"GET /healthz HTTP/1.0\r\n")  # headers unfinished: waiting
        time.sleep(0.2)
        newer.sendall(b"GET /healthz HTTP/1.0\r\n")
        time.sleep(0.2)
        # A third connection takes the oldest waiting one's place and is served.
        assert raw(server, b"GET /healthz HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 ")
        assert read_all(oldest) == b""
        newer.sendall(b"\r\n")
        assert read_all(newer).startswith(b"HTTP/1.1 200 ")


def test_a_connection_beyond_the_cap_is_closed_when_none_waits(
    serve: Serve, host: FakeHost
) -> None:
    server = serve(max_connections=1, request_timeout=5)
    host.gate = threading.Event()
    busy = threading.Thread(target=call, args=(server, "GET", "/status"))
    busy.start()  # being answered: never evicted
    try:
        time.sleep(0.3)
        with socket.create_connection(server.address, timeout=5) as extra:
            extra.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            with contextlib.suppress(ConnectionResetError):  # closed, maybe with a reset
                assert read_all(extra) == b""
    finally:
        host.gate.set()
        busy.join()
    assert call(server, "GET", "/healthz")[0] == 200


def test_many_concurrent_clients(server: AdminServer) -> None:
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(call(server, "GET", "/status")[0]))
        for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 20


# -- lifecycle ---------------------------------------------------------------------------


def test_port_0_picks_a_free_port_logged_and_stop_closes_it(
    host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    server = AdminServer(host, "127.0.0.1:0")
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.address
    with caplog.at_level(logging.INFO, logger="flowstone_host.daemon.admin"):
        server.start()
    address = server.address
    assert address[0] == "127.0.0.1" and address[1] > 0
    assert f"Admin API listening on {server.url}" in caplog.text
    server.stop()
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2).close()


def test_a_taken_port_is_a_clear_unavailable(server: AdminServer, host: FakeHost) -> None:
    other = AdminServer(host, f"127.0.0.1:{server.address[1]}")
    with pytest.raises(Unavailable, match=r"Cannot serve the admin API on http://127\.0\.0\.1:"):
        other.start()


def test_parse_listen_and_local_url() -> None:
    assert parse_listen("127.0.0.1:8787") == ("127.0.0.1", 8787)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert local_url("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert local_url("::1", 80) == "http://[::1]:80"
    for bad in ("8787", ":8787", "host:", "host:port", "host:65536", "host:+1"):
        with pytest.raises(ConfigError, match="not 'host:port'"):
            parse_listen(bad)


def test_every_answer_names_the_server_without_a_version(server: AdminServer) -> None:
    """``flowstone-host status`` checks the Server header to know it reached the admin API."""
    assert call(server, "GET", "/healthz")[1]["Server"] == "flowstone-host"
    assert call(server, "GET", "/nope")[1]["Server"] == "flowstone-host"
    head = raw(server, b"GET\r\n\r\n").partition(b"\r\n\r\n")[0].lower()
    assert b"\r\nserver: flowstone-host\r\n" in head
