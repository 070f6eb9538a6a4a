"""The plugin wire's value encoding: msgpack with a closed set of extension types.

Only plain data crosses: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, lists,
dicts (any encodable keys), and these, rebuilt as the same type on the other side: tuple,
set, frozenset, ``date``, ``datetime``, ``time``, ``timedelta``, ``Decimal``, the contract
value types (:class:`Batch`, :class:`Health`, :class:`BarrierStatus`,
:class:`ExecutionStatus`), :class:`RemoteHandle`, exceptions (as :class:`FlowStoneError`)
and, when pyarrow is installed (``flowstone-host[parquet]``), ``pyarrow.Table`` as Arrow
IPC. Decoding builds only those types from a fixed table: nothing the peer sends can make
this process import or run code, which is why there is no pickle anywhere on the wire.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

import msgpack  # type: ignore[import-untyped]

from ...contracts.types import BarrierStatus, Batch, ExecutionStatus, Health
from ...errors import FlowStoneError, NotSupported, ValidationError, normalize

__all__ = ["RemoteHandle", "decode", "encode", "plain_or_none"]


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteHandle:
    """An opaque reference to an object that lives in an isolated plugin's process.

    A :class:`~flowstone_host.Resource` run out of process returns one from ``setup``:
    the real handle (a client, a pool) cannot cross processes, so it stays in the child
    and the host passes this reference back to ``teardown`` and ``health_check``.

    Attributes:
        plugin: The isolated plugin's name.
        incarnation: Which start of the child created it; a restarted child refuses it.
        ref: The handle's number inside that child.
        type_name: The real handle's class name, for messages.
    """

    plugin: str
    incarnation: int
    ref: int
    type_name: str


_VALUE_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (Batch, Health, BarrierStatus, ExecutionStatus, RemoteHandle)
}

_TUPLE, _SET, _FROZENSET, _DATE, _DATETIME, _TIME, _TIMEDELTA, _DECIMAL = range(1, 9)
_VALUE, _ERROR, _ARROW = 9, 10, 11

_SUPPORTED = (
    "None, bool, int, float, str, bytes, list, tuple, dict, set, date, datetime, time, "
    "timedelta, Decimal, the contract value types, exceptions, and pyarrow tables "
    "(with flowstone-host[parquet])"
)


def encode(value: Any) -> bytes:
    """Encode ``value`` for the wire.

    Raises:
        ValidationError: ``value`` holds a type that cannot cross a process boundary.
    """
    data: bytes = msgpack.packb(value, default=_default, strict_types=True, use_bin_type=True)
    return data


def plain_or_none(value: Any) -> Any:
    """Return ``value`` if it can cross the wire (e.g. a cerberus schema), else ``None``."""
    try:
        encode(value)
    except ValidationError:
        return None
    return value


def decode(data: bytes | bytearray) -> Any:
    """Decode bytes written by :func:`encode`.

    Raises:
        ValueError: the bytes are not a valid encoding (a misbehaving peer).
        NotSupported: an Arrow table arrived but pyarrow is not installed.
    """
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def _ext(code: int, value: Any) -> msgpack.ExtType:
    return msgpack.ExtType(code, encode(value))


def _default(value: Any) -> Any:  # noqa: C901 - one flat dispatch over the supported types
    # strict_types sends subclasses here too: plain-data subclasses go back as their base.
    if isinstance(value, tuple):
        return _ext(_TUPLE, list(value))
    if isinstance(value, frozenset):
        return _ext(_FROZENSET, list(value))
    if isinstance(value, set):
        return _ext(_SET, list(value))
    if isinstance(value, dt.datetime):
        return _ext(_DATETIME, value.isoformat())
    if isinstance(value, dt.date):
        return _ext(_DATE, value.isoformat())
    if isinstance(value, dt.time):
        return _ext(_TIME, value.isoformat())
    if isinstance(value, dt.timedelta):
        return _ext(_TIMEDELTA, [value.days, value.seconds, value.microseconds])
    if _is_decimal(value):
        return _ext(_DECIMAL, str(value))
    if type(value).__name__ in _VALUE_TYPES and type(value) is _VALUE_TYPES[type(value).__name__]:
        fields = [getattr(value, f.name) for f in dataclasses.fields(value)]
        return _ext(_VALUE, [type(value).__name__, fields])
    if isinstance(value, BaseException):
        return _ext(_ERROR, normalize(value).to_dict())
    return _plain_subclass(value)


def _plain_subclass(value: Any) -> Any:
    base: type[Any]
    for base in (bool, int, float, str, bytes, list):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, Mapping):
        return dict(value)
    if _is_arrow_table(value):
        return msgpack.ExtType(_ARROW, _arrow_to_ipc(value))
    raise ValidationError(
        f"A {type(value).__module__}.{type(value).__qualname__} value cannot cross the "
        f"process boundary of an isolated plugin; send plain data: {_SUPPORTED}.",
        details={"type": type(value).__qualname__},
    )


def _is_arrow_table(value: Any) -> bool:
    cls = type(value)
    return cls.__name__ == "Table" and cls.__module__.split(".")[0] == "pyarrow"


def _arrow_to_ipc(table: Any) -> bytes:
    import pyarrow as pa  # type: ignore[import-untyped]

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _arrow_from_ipc(data: bytes) -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise NotSupported(
            "An isolated plugin sent an Arrow table, but pyarrow is not installed in the "
            "host; install flowstone-host[parquet]."
        ) from None
    try:
        table = pa.ipc.open_stream(data).read_all()
        table.validate(full=True)  # offsets pointing anywhere would crash whoever reads them
    except pa.ArrowException as exc:
        raise ValueError(f"malformed Arrow table: {exc}") from exc
    return table


def _value(data: list[Any]) -> Any:
    name, fields = data
    return _VALUE_TYPES[name](*fields)


def _is_decimal(value: Any) -> bool:
    # decimal costs a child a millisecond to import: if nobody imported it, no value is one
    module = sys.modules.get("decimal")
    return module is not None and isinstance(value, module.Decimal)


def _decimal(text: str) -> Any:
    import decimal

    return decimal.Decimal(text)


_DECODERS: dict[int, Callable[[Any], Any]] = {
    _TUPLE: tuple,
    _SET: set,
    _FROZENSET: frozenset,
    _DATE: dt.date.fromisoformat,
    _DATETIME: dt.datetime.fromisoformat,
    _TIME: dt.time.fromisoformat,
    _TIMEDELTA: lambda parts: dt.timedelta(*parts),
    _DECIMAL: _decimal,
    _VALUE: _value,
    _ERROR: FlowStoneError.from_dict,
}


#: How deep extension values may nest. Each level is a nested msgpack parse holding its
#: state on the C stack: unbounded, a 1 KB frame from a hostile child overflows it.
MAX_EXT_DEPTH = 32
_depth = threading.local()


def _ext_hook(code: int, data: bytes) -> Any:
    depth = getattr(_depth, "value", 0)
    if depth >= MAX_EXT_DEPTH:
        raise ValueError(f"wire values nest deeper than {MAX_EXT_DEPTH} extension levels")
    _depth.value = depth + 1
    try:
        if code == _ARROW:
            return _arrow_from_ipc(data)
        decoder = _DECODERS.get(code)
        if decoder is None:
            raise ValueError(f"unknown wire extension type {code}")
        return decoder(decode(data))
    except (NotSupported, ValueError):
        raise
    except Exception as exc:  # whatever a malformed value makes a decoder raise
        raise ValueError(f"malformed wire extension {code}: {type(exc).__name__}: {exc}") from exc
    finally:
        _depth.value = depth
