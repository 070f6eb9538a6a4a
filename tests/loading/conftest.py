"""The sandbox tests' guard: no hostile plugin may ever be imported into the test process."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

HOSTILE = "flowstone_hostile"


@pytest.fixture(autouse=True)
def _host_never_imports_hostile_code() -> Iterator[None]:
    yield
    assert HOSTILE not in sys.modules, "a hostile plugin was imported into the test process"
