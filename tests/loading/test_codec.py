"""The plugin wire format refuses what a hostile child can craft, without crashing the host."""

from __future__ import annotations

import threading
import time
from typing import Any

import msgpack
import pytest

from flowstone_host.loading.isolation.codec import MAX_CONTAINERS, MAX_EXT_DEPTH, decode, encode


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


# -- bounds against a hostile peer (issue 15, item 2) ----------------------------------


def _colliding_decimals(count: int) -> list[Any]:
    from decimal import Decimal

    modulus = 2**61 - 1  # hash(Decimal(n)) == n % modulus: every one hashes to 0
    return [Decimal(modulus * i) for i in range(1, count + 1)]


def test_a_set_of_hash_colliding_decimals_is_refused_fast() -> None:
    frame = encode(set(_colliding_decimals(5000)))
    started = time.monotonic()
    with pytest.raises(ValueError, match="not all str or bytes"):
        decode(frame)
    assert time.monotonic() - started < 0.5


def test_a_map_of_hash_colliding_keys_is_refused() -> None:
    frame = encode(dict.fromkeys(_colliding_decimals(5000), 0))
    with pytest.raises(ValueError, match="not all str or bytes"):
        decode(frame)


def test_large_sets_and_maps_of_strings_still_cross() -> None:
    value = {"names": {f"n{i}" for i in range(5000)}, "map": {f"k{i}": i for i in range(5000)}}
    assert decode(encode(value)) == value


def test_a_frame_of_empty_arrays_is_cut_off_at_the_container_budget() -> None:
    frame = b"\xdd" + (3_000_000).to_bytes(4, "big") + b"\x90" * 3_000_000
    with pytest.raises(ValueError, match="arrays and maps"):
        decode(frame)


def test_empty_arrays_hidden_in_extensions_count_too() -> None:
    value = [tuple([] for _ in range(1000)) for _ in range(1100)]  # each under the fast path
    with pytest.raises(ValueError, match="arrays and maps"):
        decode(encode(value))


def test_decoding_gives_up_at_the_calls_deadline() -> None:
    frame = encode([[i] for i in range(200_000)])
    with pytest.raises(ValueError, match="deadline"):
        decode(frame, deadline=time.monotonic() - 1)


def test_compressed_arrow_ipc_is_refused_before_it_is_expanded() -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"x": [0] * 100_000})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    frame = msgpack.packb(msgpack.ExtType(11, sink.getvalue().to_pybytes()))
    with pytest.raises(ValueError, match="compressed Arrow"):
        decode(frame)
    assert decode(encode(table)).equals(table)  # uncompressed still crosses


def test_a_refused_frame_leaves_no_spent_budget_to_the_next() -> None:
    hostile = msgpack.packb([[] for _ in range(MAX_CONTAINERS + 1)])
    with pytest.raises(ValueError, match="arrays and maps"):
        decode(hostile)
    small = (((1,),),)  # a small frame whose nested extensions are counted
    assert decode(encode(small)) == small
