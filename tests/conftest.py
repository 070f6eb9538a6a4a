"""Shared test configuration."""

import os
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# A property's examples are timed against hypothesis' 200 ms deadline and its data generation
# against a health check; on a loaded machine (CI, other test runs) either fails a correct
# test now and then. A hung example still ends at pytest-timeout's limit.
settings.register_profile("flowstone", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("flowstone")

# pytester runs the conformance kit against deliberately broken plugins (tests/testing);
# hang_guard makes a hung test, and a clean-up hung after it, fail (tests/hang_guard.py).
pytest_plugins = ["pytester", "hang_guard"]

# Fixture distributions carry their own tests; tests/testing runs them in a subprocess.
collect_ignore = ["fixtures"]


#: Session fixtures that start a real server: a test using one is an integration test.
SERVERS = frozenset({"pg_dsn", "aws_endpoint"})


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` every test that reaches the session's PostgreSQL server or moto
    endpoint, through whichever fixture: the marker says "uses real processes, servers or
    installed distributions", and ``-m "not integration"`` (mutmut, ``make test-orders``)
    must not run such a test because a file forgot its mark."""
    for item in items:
        if SERVERS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Repeat the random order's seed at the end of the run, where a failure is read (the
    header, which pytest-randomly prints it in, is far up and left out by ``-q``)."""
    if config.pluginmanager.hasplugin("randomly"):
        seed = config.getoption("randomly_seed")
        terminalreporter.write_line(
            f"random order: --randomly-seed={seed} (the same command with it replays this "
            f"order: make test RANDOM_SEED={seed}, make test-orders RANDOM_SEED={seed})"
        )


@pytest.fixture(autouse=True)
def _leaves_no_telemetry_handler_or_thread() -> Iterator[None]:
    """Fail a test that leaves a telemetry handler attached or a thread of its own running:
    either one leaks events or work into the tests that run after it."""
    from flowstone_host import telemetry

    handlers = set(telemetry.list_handlers())
    threads = set(threading.enumerate())
    yield
    left = set(telemetry.list_handlers()) - handlers
    for handler_id, _ in left:
        telemetry.detach(handler_id)  # so that the next test starts clean
    assert not left, f"the test left telemetry handlers attached: {sorted(left)}"
    deadline = time.monotonic() + 5
    running = [t for t in threading.enumerate() if t not in threads]
    for thread in running:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = sorted(t.name for t in running if t.is_alive())
    assert not alive, f"the test left threads running: {alive}"


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """Start a moto server (S3, DynamoDB) for the session; give its URL.

    boto3 reaches it over HTTP with ``endpoint_url``, as it would AWS or MinIO. Fake
    credentials and a region are set in the environment (the standard chain finds them);
    no shared config file or profile of the machine is read.
    """
    from moto_server import MotoServer  # tests/ is on sys.path beside this conftest

    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    with pytest.MonkeyPatch.context() as patch, MotoServer() as server:
        for name, value in fake.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        yield server.url


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """Give the DSN of a PostgreSQL server for the session.

    ``FLOWSTONE_TEST_PG_DSN`` when set, else a throwaway cluster made with the machine's
    server binaries (tests/postgres_server.py). Missing binaries fail the test: every CI
    machine has them.
    """
    from postgres_server import ServerError, postgres_server  # tests/ is on sys.path

    try:
        server = postgres_server()
        dsn = server.__enter__()
    except ServerError as exc:
        pytest.fail(f"No PostgreSQL server for the integration tests: {exc}", pytrace=False)
    try:
        yield dsn
    finally:
        server.__exit__(None, None, None)
