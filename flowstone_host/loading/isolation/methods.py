"""Which methods of a contract cross the process boundary."""

from __future__ import annotations

import functools
import inspect

from ...contracts.plugin import Plugin

__all__ = ["remote_methods"]


@functools.cache
def remote_methods(abc: type[Plugin]) -> frozenset[str]:
    """Return the public methods of contract ``abc`` (its own, optional ones, and Plugin's).

    These are what an isolated plugin's proxy forwards and what its child agrees to run.
    """
    return frozenset(
        name
        for name, member in inspect.getmembers(abc, inspect.isfunction)
        if not name.startswith("_")
    )
