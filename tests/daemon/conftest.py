"""Fixtures shared by the host tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fakes import FakeHost

from flowstone_host.daemon.admin import AdminServer


@pytest.fixture
def host() -> Iterator[FakeHost]:
    fake = FakeHost()
    yield fake
    fake.metrics.close()


@pytest.fixture
def serve(host: FakeHost) -> Iterator[Callable[..., AdminServer]]:
    """Start admin servers for ``host`` on 127.0.0.1 (options as keywords); stop them after."""
    servers: list[AdminServer] = []

    def start(listen: str = "127.0.0.1:0", **options: Any) -> AdminServer:
        server = AdminServer(host, listen, **options)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
