"""How the ``s3`` IO manager turns values into object bodies, and back.

Formats: ``json`` (JSON-like values), ``parquet`` and ``arrow`` (tables: pyarrow or pandas,
given back as the same kind) and ``pickle`` (any value; refused unless the config opts in,
since loading a pickle runs code from the bucket). Each format names its file extension;
``decode(encode(v))`` equals ``v`` for every value the format accepts, and a value it cannot
hold is refused at store time with a ValidationError, never written half-way.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError, ValidationError
from .._json_values import JSON_VALUE_TYPES, check_json_value
from ..parquet._tables import from_table, pq, pyarrow, to_table

__all__ = ["FORMATS", "Format", "get_format"]


@dataclass(frozen=True, slots=True)
class Format:
    """One value format: its extension, content type, and codec."""

    name: str
    extension: str
    content_type: str
    encode: Callable[[Any, str], bytes]
    decode: Callable[[bytes], Any]
    #: The kit's value types it holds unchanged (``None``: every picklable value).
    value_types: frozenset[str] | None = frozenset()


def _json_encode(value: Any, what: str) -> bytes:
    check_json_value(value, what)
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{what}: the json format cannot hold this value ({exc}); use parquet or arrow "
            "for tables, or opt in to pickle.",
            details={"type": type(value).__name__},
        ) from None


def _parquet_encode(value: Any, what: str) -> bytes:
    table = to_table(value, what)
    sink = io.BytesIO()
    pq().write_table(table, sink)
    return sink.getvalue()


def _parquet_decode(body: bytes) -> Any:
    pa = pyarrow()
    return from_table(pq().read_table(pa.BufferReader(body)))


def _arrow_encode(value: Any, what: str) -> bytes:
    pa = pyarrow()
    table = to_table(value, what)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _arrow_decode(body: bytes) -> Any:
    pa = pyarrow()
    return from_table(pa.ipc.open_file(pa.BufferReader(body)).read_all())


def _pickle_encode(value: Any, what: str) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValidationError(f"{what}: cannot pickle this value ({exc})") from None


FORMATS: dict[str, Format] = {
    "json": Format("json", "json", "application/json", _json_encode, json.loads, JSON_VALUE_TYPES),
    "parquet": Format(
        "parquet", "parquet", "application/vnd.apache.parquet", _parquet_encode, _parquet_decode
    ),
    "arrow": Format(
        "arrow", "arrow", "application/vnd.apache.arrow.file", _arrow_encode, _arrow_decode
    ),
    "pickle": Format(
        "pickle", "pickle", "application/python-pickle", _pickle_encode, pickle.loads, None
    ),
}


def get_format(name: str, allow_pickle: bool) -> Format:
    """Return the format called ``name``.

    Raises:
        ConfigError: the format is unknown, or is pickle without ``allow_pickle: true``.
    """
    if name not in FORMATS:
        raise ConfigError(
            f"Unknown format {name!r}; use one of: {', '.join(sorted(FORMATS))}.",
            details={"format": name},
        )
    if name == "pickle" and not allow_pickle:
        raise ConfigError(
            "The pickle format runs code from the bucket when it loads; set "
            "allow_pickle: true in the IO manager's config to opt in.",
            details={"format": name},
        )
    return FORMATS[name]
