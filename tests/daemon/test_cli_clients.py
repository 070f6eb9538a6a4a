"""``flowstone-host status`` and ``reload``: thin clients of a real admin server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FakeHost

from flowstone_host import ConfigError
from flowstone_host.cli import main
from flowstone_host.daemon.admin import AdminServer
from flowstone_host.daemon.client import AdminClient, listen_url


@pytest.fixture
def server(host: FakeHost) -> Iterator[AdminServer]:
    admin = AdminServer(host, "127.0.0.1:0", token="s3cret")
    admin.start()
    yield admin
    admin.stop()


@pytest.fixture(autouse=True)
def _no_token_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWSTONE_ADMIN_TOKEN", raising=False)


def host_config(tmp_path: Path, listen: str, token: str = "") -> str:
    path = tmp_path / "host.yaml"
    path.write_text(
        "apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {name: test}\n"
        f"spec:\n  admin:\n    listen: '{listen}'\n    token: '{token}'\n"
    )
    return str(path)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_status_prints_the_daemons_status(
    server: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--admin", server.url]) == 0
    assert json.loads(capsys.readouterr().out)["declarations"][0]["name"] == "memory"


def test_reload_needs_the_token(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reload", "--admin", server.url]) == 1
    assert (
        "failed (HTTP 401): This endpoint needs 'Authorization: Bearer" in capsys.readouterr().err
    )
    assert main(["reload", "--admin", server.url, "--token", "s3cret"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "outcome": "ok", "changes": []}


def test_token_from_the_environment(server: AdminServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWSTONE_ADMIN_TOKEN", "s3cret")
    assert main(["reload", "--admin", server.address[0] + f":{server.address[1]}"]) == 0


def test_a_failed_reload_exits_1_with_the_report(
    server: AdminServer, host: FakeHost, capsys: pytest.CaptureFixture[str]
) -> None:
    host.report = {"ok": False, "outcome": "failed", "rejected": ["plugins.d/a.yaml:3:5"]}
    assert main(["reload", "--admin", server.url, "--token", "s3cret"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == host.report
    assert "reload: failed (HTTP 409)" in captured.err


def test_address_and_token_from_the_host_config(
    server: AdminServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = host_config(tmp_path, f"127.0.0.1:{server.address[1]}", token="s3cret")
    assert main(["reload", "--config", config]) == 0
    assert main(["status", "--config", config]) == 0


def test_no_daemon_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert main(["status", "--admin", url]) == 1
    err = capsys.readouterr().err
    assert f"No flowstone-host daemon is running at {url}" in err
    assert "flowstone-host run" in err


def test_no_daemon_at_the_configured_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    assert main(["reload", "--config", host_config(tmp_path, f"127.0.0.1:{port}")]) == 1
    assert f"No flowstone-host daemon is running at http://127.0.0.1:{port}" in (
        capsys.readouterr().err
    )


def test_a_config_on_port_0_without_a_daemon_says_none_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--config", host_config(tmp_path, "127.0.0.1:0")]) == 1
    assert "no daemon runs on this config" in capsys.readouterr().err


def test_only_http_urls_are_followed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--admin", "file:///etc/passwd"]) == 1
    assert "is not an http:// URL" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        AdminClient("ftp://127.0.0.1:21")


def test_listen_url_maps_wildcards_to_loopback() -> None:
    assert listen_url("0.0.0.0:8787") == "http://127.0.0.1:8787"
    assert listen_url("[::1]:8787") == "http://[::1]:8787"
    with pytest.raises(ConfigError):
        listen_url("nonsense")
