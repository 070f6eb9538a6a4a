"""Fixtures shared by the host tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes import FakeHost


@pytest.fixture
def host() -> Iterator[FakeHost]:
    fake = FakeHost()
    yield fake
    fake.metrics.close()
