"""The plugin wire's value encoding: msgpack with a closed set of extension types.

Only plain data crosses: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, lists,
dicts (any encodable keys), and these, rebuilt as the same type on the other side: tuple,
set, frozenset, ``date``, ``datetime``, ``time``, ``timedelta``, ``Decimal``, the contract
value types (:class:`Batch`, :class:`Health`, :class:`BarrierStatus`,
:class:`ExecutionStatus`), :class:`RemoteHandle`, exceptions (as :class:`FlowStoneError`)
and, when pyarrow is installed (``flowstone-host[parquet]``), ``pyarrow.Table`` as Arrow
IPC. Decoding builds only those types from a fixed table: nothing the peer sends can make
this process import or run code, which is why there is no pickle anywhere on the wire.

Decoding is bounded, because a hostile child picks the bytes (see :func:`decode`):

- a frame of at most :data:`FAST_PATH_BYTES` decodes in one C call, bounded by its size;
- a larger frame is decoded with every array and map counted against
  :data:`MAX_CONTAINERS` and the clock checked against the call's deadline every
  :data:`_CLOCK_EVERY` containers, so neither 60 MB of empty arrays nor a slow decode can
  take the host's memory or its GIL past the call's ``timeout_s``;
- sets, frozensets and maps whose members are not all ``str`` or ``bytes`` (whose hashes
  are randomized) hold at most :data:`MAX_HASHED_ITEMS` members, so hash-colliding
  ``Decimal`` or ``int`` members cannot make building them quadratic;
- extension values nest at most :data:`MAX_EXT_DEPTH` deep;
- an Arrow table must be uncompressed and every buffer it declares must lie inside the
  frame, checked on the IPC metadata before pyarrow allocates anything (see
  :mod:`.arrow_wire`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgpack  # type: ignore[import-untyped]

from ...contracts.types import BarrierStatus, Batch, ExecutionStatus, Health
from ...errors import FlowStoneError, NotSupported, ValidationError, normalize
from .arrow_wire import arrow_from_ipc, arrow_to_ipc, is_arrow_table

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
    # One packer per thread, reused: building one per call (what packb does) costs more
    # than packing a small value. An extension's payload is packed while its frame is, so a
    # nested call finds none idle and takes a fresh one. A packer keeps the largest buffer
    # it ever grew: one that packed a large value is dropped.
    packer = _packers.idle or msgpack.Packer(
        default=_default, strict_types=True, use_bin_type=True, buf_size=_KEEP_PACKER_BYTES
    )
    _packers.idle = None
    try:
        data: bytes = packer.pack(value)  # resets its buffer on failure too
    except OverflowError:  # msgpack holds ints of at most 64 bits
        raise ValidationError(
            "An int beyond 64 bits cannot cross the process boundary of an isolated plugin; "
            "send it as a str, or run the plugin with isolation: inprocess.",
            details={"type": "int"},
        ) from None
    if len(data) <= _KEEP_PACKER_BYTES:
        _packers.idle = packer
    return data


_KEEP_PACKER_BYTES = 1 << 16


class _Packers(threading.local):
    idle: Any = None


_packers = _Packers()


def plain_or_none(value: Any) -> Any:
    """Return ``value`` if it can cross the wire (e.g. a cerberus schema), else ``None``."""
    try:
        encode(value)
    except ValidationError:
        return None
    return value


#: Frames up to this size decode in one C call: their cost is bounded by their size.
FAST_PATH_BYTES = 4096
#: Arrays and maps one larger frame may hold (each costs the host at least 56 bytes).
MAX_CONTAINERS = 1_000_000
#: Members of a set, or keys of a map, that are not all ``str``/``bytes``.
MAX_HASHED_ITEMS = 1024
_CLOCK_EVERY = 1024
_SAFE_KEYS = (str, bytes)


class _Budget(threading.local):
    # class-level defaults: a thread's first read finds them without raising AttributeError
    depth = 0  # extension levels being decoded (see _ext_hook)
    containers = 0
    deadline: float | None = None


_budget = _Budget()


def decode(data: bytes | bytearray, deadline: float | None = None) -> Any:
    """Decode bytes written by :func:`encode`, within the bounds of the module docstring.

    Args:
        data: The frame.
        deadline: ``time.monotonic()`` value past which decoding gives up.

    Raises:
        ValueError: the bytes are not a valid encoding, break a bound, or took past the
            deadline (a misbehaving peer).
        NotSupported: an Arrow table arrived but pyarrow is not installed.
    """
    budget = _budget
    if budget.depth == 0:  # a frame: an extension's payload counts against it
        # reset on every frame, fast ones too: their nested payloads are counted, and must
        # not inherit what an earlier (perhaps refused) frame of this thread spent
        budget.containers = 0
        budget.deadline = deadline
        if len(data) <= FAST_PATH_BYTES:
            return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    return msgpack.unpackb(
        data,
        ext_hook=_ext_hook,
        raw=False,
        strict_map_key=False,
        list_hook=_counted_list,
        object_pairs_hook=_counted_map,
    )


def _spend() -> None:
    _budget.containers += 1
    if _budget.containers > MAX_CONTAINERS:
        raise ValueError(f"a wire value holds more than {MAX_CONTAINERS} arrays and maps")
    deadline = _budget.deadline
    if (
        _budget.containers % _CLOCK_EVERY == 0
        and deadline is not None
        and time.monotonic() > deadline
    ):
        raise ValueError("decoding the reply ran past the call's deadline")


def _counted_list(items: list[Any]) -> list[Any]:
    _spend()
    return items


def _counted_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    _spend()
    return _map(pairs)


def _map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    if len(pairs) > MAX_HASHED_ITEMS and not all(type(k) in _SAFE_KEYS for k, _ in pairs):
        raise ValueError(
            f"a wire map has {len(pairs)} keys that are not all str or bytes "
            f"(at most {MAX_HASHED_ITEMS} are allowed)"
        )
    return dict(pairs)


def _hashed(build: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
    def checked(items: list[Any]) -> Any:
        if len(items) > MAX_HASHED_ITEMS and not all(type(i) in _SAFE_KEYS for i in items):
            raise ValueError(
                f"a wire set has {len(items)} members that are not all str or bytes "
                f"(at most {MAX_HASHED_ITEMS} are allowed)"
            )
        return build(items)

    return checked


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
    if is_arrow_table(value):
        return msgpack.ExtType(_ARROW, arrow_to_ipc(value))
    raise ValidationError(
        f"A {type(value).__module__}.{type(value).__qualname__} value cannot cross the "
        f"process boundary of an isolated plugin; send plain data: {_SUPPORTED}.",
        details={"type": type(value).__qualname__},
    )


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
    _SET: _hashed(set),
    _FROZENSET: _hashed(frozenset),
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


def _ext_hook(code: int, data: bytes) -> Any:
    depth = _budget.depth
    if depth >= MAX_EXT_DEPTH:
        raise ValueError(f"wire values nest deeper than {MAX_EXT_DEPTH} extension levels")
    _budget.depth = depth + 1
    try:
        if code == _ARROW:
            return arrow_from_ipc(data)
        decoder = _DECODERS.get(code)
        if decoder is None:
            raise ValueError(f"unknown wire extension type {code}")
        return decoder(decode(data))
    except (NotSupported, ValueError):
        raise
    except Exception as exc:  # whatever a malformed value makes a decoder raise
        raise ValueError(f"malformed wire extension {code}: {type(exc).__name__}: {exc}") from exc
    finally:
        _budget.depth = depth
