"""The conformance kit: pytest base classes that check a plugin keeps its contract.

A plugin author subclasses one class in a test module, names the subclass ``Test...`` and
defines the one fixture its docstring names; every invariant stated in the contract's
docstring then runs as a test::

    import pytest
    from flowstone_host.testing import IOManagerContract

    class TestMyIOManager(IOManagerContract):
        @pytest.fixture
        def io_manager(self, tmp_path):
            return MyIOManager({"root": str(tmp_path)})
"""

import pytest

# The kit's asserts live outside test modules; have pytest rewrite them for clear failures.
pytest.register_assert_rewrite(
    *(
        f"{__name__}.{module}"
        for module in (
            "_checks",
            "io_manager",
            "item_reader",
            "parallel",
            "resource",
            "routing",
            "scatter",
            "scatter_durable",
        )
    )
)

from .io_manager import IOManagerContract  # noqa: E402
from .item_reader import ItemReaderContract  # noqa: E402
from .parallel import ParallelCoordinatorContract  # noqa: E402
from .resource import ResourceContract  # noqa: E402
from .routing import RoutingCoordinatorContract  # noqa: E402
from .scatter import ScatterCoordinatorContract  # noqa: E402

__all__ = [
    "IOManagerContract",
    "ItemReaderContract",
    "ParallelCoordinatorContract",
    "ResourceContract",
    "RoutingCoordinatorContract",
    "ScatterCoordinatorContract",
]
