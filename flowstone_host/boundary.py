"""The error boundary around every call the host makes into plugin code.

``call(entry, "load", asset, partition)`` runs the method inside a telemetry span
(``("flowstone", "plugin", "call", ...)`` with ``plugin_kind``, ``name`` and ``method``, which
the metrics count) and turns whatever it raises into a :class:`~flowstone_host.FlowStoneError`
(a ``FlowStoneError`` passes through; anything else is normalized, the original kept as
``__cause__``). Plugins are called as they are: nothing rewrites their methods. When no
telemetry handler listens for the span (nothing counts plugin calls), the span is skipped;
errors are normalized and named all the same.
"""

from __future__ import annotations

from typing import Any

from .errors import FlowStoneError, normalize
from .registry import Entry
from .telemetry import listening, span

__all__ = ["PLUGIN_CALL", "call"]

#: The span every plugin call runs in.
PLUGIN_CALL = ("flowstone", "plugin", "call")


def call(entry: Entry, method: str, /, *args: Any, **kwargs: Any) -> Any:
    """Call ``entry.instance.<method>(*args, **kwargs)`` behind the error boundary.

    Raises:
        FlowStoneError: whatever the plugin raised, normalized, with the declaration's kind
            and name in its context.
    """
    try:
        if not listening(PLUGIN_CALL):  # nothing counts or traces it: no span to build
            return getattr(entry.instance, method)(*args, **kwargs)
        metadata = {"plugin_kind": entry.kind, "name": entry.name, "method": method}
        with span(PLUGIN_CALL, metadata):
            return getattr(entry.instance, method)(*args, **kwargs)
    except FlowStoneError as exc:
        _name(exc, entry)
        raise
    except (Exception, SystemExit) as exc:  # a plugin's sys.exit() must not end the host
        raise _name(normalize(exc), entry) from exc


def _name(error: FlowStoneError, entry: Entry) -> FlowStoneError:
    error.context.setdefault("plugin_kind", entry.kind)
    error.context.setdefault("name", entry.name)
    return error
