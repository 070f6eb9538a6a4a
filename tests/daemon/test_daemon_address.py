"""``status`` and ``reload`` find the daemon through its address file, and say what they find.

Regression tests of issue 14, item 10: a daemon started with ``--admin-listen 127.0.0.1:0``
could not be found, and a port answering something else was reported as "no daemon".
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from flowstone_host.cli import main
from flowstone_host.daemon.address_file import read_address, remove_address, write_address

WAIT_S = 20.0


def _config(root: Path, listen: str = "127.0.0.1:0") -> str:
    (root / "plugins.d").mkdir(exist_ok=True)
    path = root / "host.yaml"
    path.write_text(
        "apiVersion: flowstone/v1\nkind: HostConfig\nmetadata: {name: t}\n"
        f"spec: {{plugins_dir: plugins.d, state_dir: state, admin: {{listen: '{listen}'}}}}\n"
    )
    return str(path)


def _start(config: str, root: Path) -> subprocess.Popen[bytes]:
    script = Path(sys.executable).with_name("flowstone-host")
    log = (root / "daemon.log").open("wb")
    return subprocess.Popen(
        [str(script), "run", "--config", config, "--admin-listen", "127.0.0.1:0"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.integration
def test_status_finds_a_daemon_on_port_0_and_the_file_goes_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    daemon = _start(config, tmp_path)
    address = tmp_path / "state" / "daemon.json"
    try:
        _wait_for_file(address)
        assert main(["status", "--config", config]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["host"]["pid"] == daemon.pid == json.loads(address.read_text())["pid"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(WAIT_S) == 0
    assert not address.exists()


@pytest.mark.integration
def test_a_killed_daemons_file_is_reported_as_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    daemon = _start(config, tmp_path)
    address = tmp_path / "state" / "daemon.json"
    try:
        _wait_for_file(address)
    finally:
        daemon.kill()
        daemon.wait(WAIT_S)
    assert address.exists()
    assert main(["reload", "--config", config]) == 1
    err = capsys.readouterr().err
    assert f"(pid {daemon.pid}" in err and "no longer running" in err


def test_no_address_file_on_port_0_says_no_daemon_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--config", _config(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "daemon.json" in err and "no daemon runs on this config" in err


def test_the_file_is_removed_only_by_its_own_daemon(tmp_path: Path) -> None:
    path = write_address(tmp_path, "http://127.0.0.1:1", pid=_dead_pid())
    remove_address(path)  # not this process's: left alone
    assert path.exists()
    found = read_address(tmp_path)
    assert found is not None and not found.alive
    assert write_address(tmp_path, "http://127.0.0.1:2") == path
    remove_address(path)
    assert not path.exists() and read_address(tmp_path) is None


class _Other(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"hello": "world"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_http() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Other)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_another_http_server_on_the_port_is_named_as_such(
    other_http: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--admin", other_http]) == 1
    err = capsys.readouterr().err
    assert f"Something answers at {other_http}, but it is not a flowstone-host admin API" in err
    assert "No flowstone-host daemon is running" not in err


@pytest.fixture
def not_http() -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    thread.join(5)


def test_a_port_that_does_not_speak_http_is_named_as_such(
    not_http: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--admin", not_http]) == 1
    err = capsys.readouterr().err
    assert "it does not speak HTTP" in err


def test_the_daemon_address_in_the_state_folder_wins_over_admin_listen(
    tmp_path: Path, other_http: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, listen="127.0.0.1:9")
    write_address(tmp_path / "state", other_http, pid=os.getpid())
    assert main(["status", "--config", config]) == 1
    assert f"Something answers at {other_http}" in capsys.readouterr().err
