"""A plugin's cerberus ``config_schema`` as plain data, so it can leave a probe process.

A process-isolated plugin is never imported into the host, so the host checks its config
with the schema its import probe read. A schema is mostly plain data, but the normal way
to coerce is a callable (``"coerce": int``), which cannot cross a process boundary as
such. The standard coercions travel by name (``{"$callable": "int"}``) and are rebuilt
here; any other callable (a lambda, a plugin function) makes the schema uncheckable
outside the plugin's process, and the host refuses the declaration instead of skipping
the check.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["STANDARD_CALLABLES", "from_wire", "to_wire"]

#: Callables a schema may use that travel by name: the coercions cerberus users write.
STANDARD_CALLABLES: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "bytes": bytes,
    "list": list,
    "tuple": tuple,
    "dict": dict,
    "set": set,
    "frozenset": frozenset,
    "decimal.Decimal": decimal.Decimal,
    "datetime.date.fromisoformat": dt.date.fromisoformat,
    "datetime.datetime.fromisoformat": dt.datetime.fromisoformat,
    "datetime.time.fromisoformat": dt.time.fromisoformat,
}

_MARK = "$callable"


def to_wire(schema: Any) -> tuple[Any, list[str]]:
    """Return ``schema`` as plain data, and what in it cannot travel.

    Returns:
        The plain form (standard callables as ``{"$callable": name}``) and one sentence per
        value that could not be carried, naming its path (empty when all could).
    """
    problems: list[str] = []
    plain = _plain(schema, (), problems)
    return (None if problems else plain), problems


def from_wire(data: Any) -> Any:
    """Rebuild a schema written by :func:`to_wire`; unknown callable names stay as data."""
    if isinstance(data, Mapping):
        if set(data) == {_MARK} and data[_MARK] in STANDARD_CALLABLES:
            return STANDARD_CALLABLES[data[_MARK]]
        return {k: from_wire(v) for k, v in data.items()}
    if isinstance(data, list):
        return [from_wire(v) for v in data]
    return data


def _plain(value: Any, path: tuple[str, ...], problems: list[str]) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                problems.append(f"{_where(path)} has a non-string key {key!r}")
                continue
            out[key] = _plain(item, (*path, key), problems)
        return out
    if isinstance(value, list | tuple):
        return [_plain(v, (*path, str(i)), problems) for i, v in enumerate(value)]
    if callable(value):
        name = _standard_name(value)
        if name is not None:
            return {_MARK: name}
        what = getattr(value, "__qualname__", type(value).__name__)
        problems.append(
            f"{_where(path)} is the function {what!r}, which cannot be checked outside the "
            f"plugin's process (standard coercions travel: {', '.join(STANDARD_CALLABLES)})"
        )
        return None
    problems.append(f"{_where(path)} holds a {type(value).__name__}, which is not plain data")
    return None


def _standard_name(value: Any) -> str | None:
    for name, known in STANDARD_CALLABLES.items():
        try:
            if value is known or value == known:
                return name
        except Exception:  # a callable object with a hostile __eq__
            return None
    return None


def _where(path: tuple[str, ...]) -> str:
    return "config_schema" + "".join(f"[{p!r}]" for p in path)
