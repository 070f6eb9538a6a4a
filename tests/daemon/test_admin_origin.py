"""Who may talk to the admin API: ``Host`` and ``Origin`` without a token, and what is logged."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from admin_calls import call, error_code
from fakes import FakeHost

from flowstone_host.daemon.admin import AdminServer

Serve = Callable[..., AdminServer]


def test_a_cross_origin_post_without_a_token_is_refused(serve: Serve, host: FakeHost) -> None:
    server = serve()
    port = server.address[1]
    for origin in ("http://evil.example", f"http://evil.example:{port}", "null"):
        status, _, body = call(server, "POST", "/reload", {"Origin": origin})
        assert (status, error_code(body)) == (403, "permission_denied"), origin
    assert host.triggers == []
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        assert call(server, "POST", "/reload", {"Origin": origin})[0] == 200, origin
    assert call(server, "POST", "/reload")[0] == 200  # curl and the CLI send no Origin


def test_a_foreign_host_header_without_a_token_is_refused(serve: Serve, host: FakeHost) -> None:
    """DNS rebinding: a page on evil.example, resolved to 127.0.0.1, asks with its own name."""
    server = serve()
    port = server.address[1]
    for name in (f"evil.example:{port}", "evil.example", "127.0.0.1", f"127.0.0.1:{port + 1}"):
        for method, path in (("GET", "/status"), ("POST", "/reload")):
            status, _, body = call(server, method, path, {"Host": name})
            assert (status, error_code(body)) == (403, "permission_denied"), (name, path)
    assert host.triggers == []
    for name in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"LOCALHOST.:{port}",
        f"10.1.2.3:{port}",
    ):
        assert call(server, "GET", "/status", {"Host": name})[0] == 200, name


def test_with_a_token_the_token_decides(serve: Serve, host: FakeHost) -> None:
    server = serve(token="s3cret")
    foreign = {"Host": "proxy.example", "Origin": "https://console.example"}
    assert call(server, "GET", "/status", foreign)[0] == 200
    assert call(server, "POST", "/reload", foreign)[0] == 401
    assert call(server, "POST", "/reload", {**foreign, "Authorization": "Bearer s3cret"})[0] == 200
    assert host.triggers == ["http"]


def test_listening_beyond_this_machine_without_a_token_warns_with_the_bound_address(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="flowstone_host.daemon.admin"):
        server = serve("0.0.0.0:0")
    port = server.address[1]
    assert port > 0
    assert f"Admin API listening on http://127.0.0.1:{port} (bound to 0.0.0.0:{port})" in (
        caplog.text
    )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"0.0.0.0:{port}" in warnings[0].getMessage()
    assert "without a token" in warnings[0].getMessage()


@pytest.mark.parametrize(("listen", "token"), [("127.0.0.1:0", None), ("0.0.0.0:0", "s3cret")])
def test_no_warning_on_loopback_or_with_a_token(
    serve: Serve, caplog: pytest.LogCaptureFixture, listen: str, token: str | None
) -> None:
    with caplog.at_level(logging.INFO, logger="flowstone_host.daemon.admin"):
        serve(listen, token=token)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
