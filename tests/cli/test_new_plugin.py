"""``flowstone-host new-plugin``: the distribution it writes works end to end.

The generated IO manager is pip-installed into a temporary target folder (on
``PYTHONPATH``, never into the test environment), passes its own conformance tests, its
example manifest validates, and a running daemon picks it up from a dropped manifest.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowstone_host.cli.main import main
from flowstone_host.cli.new_plugin import SCAFFOLDED, write_plugin
from flowstone_host.kinds import Kind

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 30.0


def _env(*paths: Path) -> dict[str, str]:
    """The environment with ``paths`` then this checkout first on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if k != "FLOWSTONE_ADMIN_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in paths), str(REPO)])
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{output}"
    return output


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The IO manager ``my-store`` generated, and pip-installed into a target folder.

    Built with the backend its ``pyproject.toml`` names, taken from this environment (the
    ``test`` extra holds it) rather than fetched: no index is asked, so the test needs no
    network.
    """
    root = tmp_path_factory.mktemp("new-plugin")
    dist = write_plugin(Kind.IO_MANAGER, "my-store", root / "src")
    site = root / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    pip += ["--no-build-isolation", "--disable-pip-version-check"]
    pip += ["--target", str(site), str(dist)]
    _run(pip, root, _env())
    yield dist, site


def test_the_build_backend_it_names_is_in_the_test_environment(tmp_path: Path) -> None:
    """The end-to-end install builds without isolation, with this environment's backend."""
    dist = write_plugin(Kind.RESOURCE, "probe", tmp_path)
    build = tomllib.loads((dist / "pyproject.toml").read_text())["build-system"]
    [requirement] = build["requires"]
    assert build["build-backend"] == "hatchling.build" and requirement.startswith("hatchling")
    test_extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert requirement in test_extra["optional-dependencies"]["test"]
    assert importlib.util.find_spec("hatchling") is not None


@pytest.mark.parametrize("kind", list(SCAFFOLDED), ids=str)
def test_each_kind_is_written_with_its_entry_point_and_kit_test(tmp_path: Path, kind: Kind) -> None:
    assert main(["new-plugin", str(kind), "my-thing", "--output", str(tmp_path)]) == 0
    dist = tmp_path / "flowstone-my-thing"
    pyproject = (dist / "pyproject.toml").read_text()
    namespace = {"IOManager": "io_managers", "ItemReader": "item_readers", "Resource": "resources"}
    assert f'[project.entry-points."flowstone.{namespace[kind]}"]' in pyproject
    assert f'my-thing = "flowstone_my_thing:MyThing{kind}"' in pyproject
    package = (dist / "flowstone_my_thing" / "__init__.py").read_text()
    assert "contract_version = " in package and "config_schema" in package
    assert f"{kind}Contract" in (dist / "tests" / "test_conformance.py").read_text()
    assert f"kind: {kind}" in (dist / "example-manifest.yaml").read_text()
    assert "{{" not in pyproject + package


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["IOManger", "x"], "'IOManger' is not a plugin kind (did you mean 'IOManager'?)"),
        (["Executor", "x"], "'Executor' has no template"),
        (["IOManager", "My Store"], "plugin name 'My Store' must be lower case"),
    ],
)
def test_refusals_name_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["new-plugin", *argv, "--output", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_an_existing_folder_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "flowstone-taken").mkdir()
    assert main(["new-plugin", "Resource", "taken", "--output", str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err


@pytest.mark.integration
def test_the_installed_plugin_passes_its_own_tests(installed: tuple[Path, Path]) -> None:
    dist, site = installed
    tests = str(dist / "tests")
    command = [sys.executable, "-m", "pytest", tests, "-q", "-p", "no:cacheprovider"]
    # The package comes from the install target, not the source folder.
    output = _run([*command, "--rootdir", str(dist)], site, _env(site), timeout=180)
    assert " passed" in output and " failed" not in output, output


@pytest.mark.integration
def test_its_example_manifest_validates(installed: tuple[Path, Path]) -> None:
    dist, site = installed
    validate = [sys.executable, "-m", "flowstone_host.cli", "validate"]
    _run([*validate, str(dist / "example-manifest.yaml")], dist, _env(site))


@pytest.mark.integration
def test_a_running_daemon_picks_it_up_from_a_dropped_manifest(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    dist, site = installed
    (tmp_path / "plugins.d").mkdir()
    spec = {
        "plugins_dir": "plugins.d",
        "state_dir": "state",
        "reload": {"debounce_ms": 100, "rescan_interval_s": 1},
        "admin": {"listen": "127.0.0.1:0", "token": ""},
    }
    host = {"apiVersion": "flowstone/v1", "kind": "HostConfig", "metadata": {"name": "e2e"}}
    (tmp_path / "host.yaml").write_text(json.dumps({**host, "spec": spec}))
    run = [sys.executable, "-m", "flowstone_host.cli", "run", "--config", "host.yaml"]
    run += ["--log-format", "json", "--admin-listen", "127.0.0.1:0"]
    with open(tmp_path / "daemon.log", "wb") as log:
        daemon = subprocess.Popen(run, cwd=tmp_path, env=_env(site), stdout=log, stderr=log)
    try:
        url = _wait(lambda: _admin_url(tmp_path, daemon), "the daemon's admin URL")
        text = (dist / "example-manifest.yaml").read_text()
        store = tmp_path / "store"
        text = text.replace("/var/lib/flowstone/my-store", str(store))
        (tmp_path / "plugins.d" / ".drop.tmp").write_text(text)
        os.replace(tmp_path / "plugins.d" / ".drop.tmp", tmp_path / "plugins.d" / "store.yaml")
        _post(f"{url}/reload")
        found = _wait(lambda: _declaration(url, "my-store"), "my-store active in /status")
        assert found["kind"] == "IOManager" and found["plugin"] == "my-store", found
    finally:
        daemon.terminate()
        daemon.wait(WAIT_S)


def _wait(probe: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while (value := probe()) in (None, "", False):
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.05)
    return value


def _admin_url(root: Path, daemon: subprocess.Popen[bytes]) -> str:
    log = (root / "daemon.log").read_text(errors="replace")
    assert daemon.poll() is None, f"the daemon exited:\n{log}"
    for line in log.splitlines():
        if line.startswith("{") and "admin_url" in line:
            record = json.loads(line)
            if "is running" in record["message"]:
                return str(record["admin_url"])
    return ""


def _open(request: urllib.request.Request) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=WAIT_S) as response:
        return json.loads(response.read() or b"null")


def _post(url: str) -> Any:
    return _open(urllib.request.Request(url, data=b"", method="POST"))


def _declaration(url: str, name: str) -> dict[str, Any] | None:
    status = _open(urllib.request.Request(f"{url}/status"))
    for declaration in status["declarations"]:
        if declaration["name"] == name and declaration["state"] == "active":
            return dict(declaration)
    return None
