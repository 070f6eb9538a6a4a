"""How the ``postgres`` IO manager turns values into column values, and back.

Formats: ``json`` (JSON-like values, in a ``jsonb`` column), ``arrow`` (pyarrow tables and
pandas DataFrames as Arrow IPC stream bytes in a ``bytea`` column, given back as the same
kind), ``pickle`` (any value; refused unless the config opts in, since loading a pickle
runs code) and ``table`` (see :mod:`._tables`). ``decode(encode(v))`` equals ``v`` for every
value a format accepts; a value it cannot hold is refused with a ValidationError before
anything is written.
"""

from __future__ import annotations

import importlib
import pickle
from typing import Any

from ...errors import ConfigError, ValidationError
from .._json_values import JSON_VALUE_TYPES, check_json_value
from ._json import dumps

__all__ = [
    "FORMATS",
    "VALUE_TYPES",
    "check_format",
    "decode",
    "encode",
    "from_table",
    "pyarrow",
    "to_table",
]

FORMATS = ("json", "arrow", "table", "pickle")

#: The conformance kit's value types each format holds unchanged (``None``: all of them).
VALUE_TYPES: dict[str, frozenset[str] | None] = {
    "json": JSON_VALUE_TYPES,
    "arrow": frozenset(),
    "table": frozenset(),
    "pickle": None,
}


def pyarrow() -> Any:
    """Import pyarrow (with ``pyarrow.ipc`` and ``pyarrow.csv``) or name what to install.

    Raises:
        ConfigError: pyarrow is not installed.
    """
    try:
        pa = importlib.import_module("pyarrow")
        importlib.import_module("pyarrow.csv")
        importlib.import_module("pyarrow.ipc")
    except ImportError:
        raise ConfigError(
            "The arrow and table formats need pyarrow: pip install 'flowstone-host[parquet]'."
        ) from None
    return pa


def check_format(name: Any, allow_pickle: bool) -> str:
    """Return ``name`` if it is a usable format.

    Raises:
        ConfigError: unknown format, or pickle without ``allow_pickle: true``.
    """
    if name not in FORMATS:
        raise ConfigError(f"Unknown format {name!r}; use one of: {', '.join(FORMATS)}.")
    if name == "pickle" and not allow_pickle:
        raise ConfigError(
            "The pickle format runs code from the database when it loads; set "
            "allow_pickle: true in the IO manager's config to opt in."
        )
    return str(name)


def to_table(value: Any, what: str) -> tuple[Any, str]:
    """Return ``(pyarrow table, kind)`` for a pyarrow table or a pandas DataFrame.

    Raises:
        ValidationError: the value is neither.
    """
    pa = pyarrow()
    if isinstance(value, pa.Table):
        return value, "pyarrow"
    if type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame":
        try:
            return pa.Table.from_pandas(value), "pandas"
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise ValidationError(f"{what}: this DataFrame has no Arrow form ({exc}).") from None
    raise ValidationError(
        f"{what}: the arrow and table formats hold pyarrow tables and pandas DataFrames, not "
        f"{type(value).__name__}; use the json format for plain data.",
        details={"type": type(value).__name__},
    )


def from_table(table: Any, kind: str) -> Any:
    """Return ``table`` as the kind it was stored as."""
    return table.to_pandas() if kind == "pandas" else table


def encode(fmt: str, value: Any, what: str) -> tuple[str | None, Any, str]:
    """Return ``(json text, bytes, kind)`` to store ``value`` in format ``fmt``.

    Raises:
        ValidationError: the format cannot hold the value.
    """
    if fmt == "json":
        check_json_value(value, what)
        return dumps(value, what), None, "json"
    if fmt == "pickle":
        try:
            return None, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), "pickle"
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise ValidationError(f"{what}: cannot pickle this value ({exc}).") from None
    pa = pyarrow()
    table, kind = to_table(value, what)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return None, memoryview(sink.getvalue()), kind


def decode(fmt: str, kind: str, payload_json: Any, payload_bytes: Any) -> Any:
    """Return the value stored by :func:`encode`."""
    if fmt == "json":
        return payload_json  # psycopg parsed the jsonb already
    if fmt == "pickle":
        return pickle.loads(payload_bytes)  # opted in: allow_pickle
    pa = pyarrow()
    table = pa.ipc.open_stream(pa.py_buffer(payload_bytes)).read_all()
    return from_table(table, kind)
