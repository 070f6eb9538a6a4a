"""The plugin wire format refuses what a hostile child can craft, without crashing the host."""

from __future__ import annotations

import threading
from typing import Any

import msgpack
import pytest

from flowstone_host.loading.isolation.codec import MAX_EXT_DEPTH, decode, encode


def _in_a_thread(data: bytes) -> Any:
    """Decode on a worker thread, whose C stack is smaller than the main thread's."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = decode(data)
        except Exception as exc:
            out["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    return out


def test_values_nest_as_deep_as_the_limit_allows() -> None:
    value: Any = 1
    for _ in range(MAX_EXT_DEPTH - 1):
        value = (value,)
    assert decode(encode(value)) == value


def test_deeper_nesting_is_refused_not_a_crash() -> None:
    payload = msgpack.packb(1)
    for _ in range(5000):  # about 15 KB: enough to overflow a thread's C stack unchecked
        payload = msgpack.packb(msgpack.ExtType(1, payload))
    out = _in_a_thread(payload)
    assert isinstance(out.get("error"), ValueError)
    assert "deeper than" in str(out["error"])


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb(msgpack.ExtType(99, b"")),  # an unknown extension type
        msgpack.packb(msgpack.ExtType(1, b"\xc1")),  # a reserved msgpack byte inside
        msgpack.packb(msgpack.ExtType(10, msgpack.packb([1, 2]))),  # an error that is a list
    ],
    ids=["unknown-type", "garbage-inside", "wrong-shape"],
)
def test_malformed_extensions_are_value_errors(payload: bytes) -> None:
    with pytest.raises(ValueError):
        decode(payload)


def test_an_arrow_table_with_offsets_pointing_anywhere_is_refused() -> None:
    pa = pytest.importorskip("pyarrow", reason="Arrow tables need flowstone-host[parquet]")
    table = pa.table({"s": ["a", "bb", "ccc"]})
    good = encode(table)
    assert decode(good).equals(table)
    raw = bytearray(good)
    offsets = b"".join(n.to_bytes(4, "little") for n in (0, 1, 3, 6))  # the column's offsets
    at = raw.find(offsets)
    assert at > 0
    raw[at + 4 : at + 8] = (0x7FFF0000).to_bytes(4, "little")  # a string offset out of bounds
    with pytest.raises(ValueError, match="malformed Arrow table"):
        decode(bytes(raw))
