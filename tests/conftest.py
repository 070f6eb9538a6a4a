"""Shared test configuration."""

import os
from collections.abc import Iterator

import pytest

# pytester runs the conformance kit against deliberately broken plugins (tests/testing).
pytest_plugins = ["pytester"]

# Fixture distributions carry their own tests; tests/testing runs them in a subprocess.
collect_ignore = ["fixtures"]


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
