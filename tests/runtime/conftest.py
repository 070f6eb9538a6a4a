from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runtime import helpers, work


@pytest.fixture(autouse=True)
def _clean_calls() -> Iterator[None]:
    work.CALLS.clear()
    work.JOIN_FAILS["on"] = True
    yield
    work.CALLS.clear()
    while helpers.OPEN:
        helpers.OPEN.pop().close()
