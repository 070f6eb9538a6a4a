"""Letting go of what plugins hold: tear down a resource's handle, close a plugin.

Never raises: a plugin failing to let go is logged, and the host carries on. The same holds
for what a constructor or ``setup()`` returns after its declaration was given up on
(:mod:`.timed`): it is closed, or torn down and closed, when it finally returns.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from ..contracts.plugin import Plugin
from ..contracts.resource import Resource
from ..manifest.model import Declaration
from .checks import label
from .entry import Entry
from .timed import TimedCall

__all__ = ["close_quietly", "let_go", "let_go_handle", "teardown_entry"]

# The loader's log: operators filter these lines under the name they have always had.
log = logging.getLogger("flowstone_host.loading.loader")


def teardown_entry(entry: Entry, timeout_s: float | None = None) -> bool:
    """Release what a loaded entry holds: ``teardown`` a resource handle, ``close`` a plugin.

    Never raises: a plugin failing to let go is logged, and the host carries on; ``close``
    runs even when ``teardown`` raised. With ``timeout_s``, both run on a thread of their own
    and one that takes longer is left behind there and reported.

    Returns:
        Whether it finished within ``timeout_s``.
    """
    if timeout_s is None:
        _teardown(entry)
        return True
    what = f"{entry.kind} {entry.name!r}: teardown"
    key = f"{entry.kind}/{entry.name}/teardown/{id(entry)}"
    return TimedCall(what, key, functools.partial(_teardown, entry), _ignore).run(timeout_s)


def _teardown(entry: Entry) -> None:
    instance = entry.instance
    if isinstance(instance, Resource) and entry.handle is not None:
        try:
            instance.teardown(entry.handle)
        except BaseException:
            log.exception(
                "Tearing down %s %r raised; it was dropped anyway.", entry.kind, entry.name
            )
    if isinstance(instance, Plugin):
        close_quietly(entry, instance)


def close_quietly(owner: Entry | Declaration, instance: Plugin) -> None:
    """Close ``owner``'s plugin ``instance``; what it raises is logged, not raised."""
    try:
        instance.close()
    except BaseException:
        log.exception("Closing %s %r raised; it was dropped anyway.", owner.kind, owner.name)


def _ignore(ok: bool, result: Any) -> None:
    """A late teardown returned: nothing to let go."""


def let_go(ok: bool, instance: Any) -> None:
    """A constructor returned after its declaration failed: close what it built."""
    if ok and isinstance(instance, Plugin):
        try:
            instance.close()
        except BaseException:
            log.exception("Closing a plugin built too late raised; it was dropped anyway.")


def let_go_handle(declaration: Declaration, instance: Resource, ok: bool, handle: Any) -> None:
    """A ``setup()`` returned (or raised) after its declaration failed: tear down what it
    set up, and close the plugin."""
    if ok:
        try:
            instance.teardown(handle)
        except BaseException:
            log.exception("Tearing down %s, set up too late, raised.", label(declaration))
    close_quietly(declaration, instance)
