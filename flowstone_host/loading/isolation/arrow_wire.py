"""Arrow tables on the plugin wire: uncompressed IPC streams, checked before pyarrow reads.

A table crosses as an Arrow IPC stream (``flowstone-host[parquet]``). What a peer sends is
checked on the IPC metadata before pyarrow allocates anything: compressed IPC is refused
(a 100 KB frame could expand to gigabytes), and every buffer a batch declares must lie
inside its message's body, so a table costs at most the frame's size.
"""

from __future__ import annotations

import struct
from typing import Any

from ...errors import NotSupported

__all__ = ["arrow_from_ipc", "arrow_to_ipc", "is_arrow_table"]


def is_arrow_table(value: Any) -> bool:
    """Whether ``value`` is a ``pyarrow.Table``, without importing pyarrow."""
    cls = type(value)
    return cls.__name__ == "Table" and cls.__module__.split(".")[0] == "pyarrow"


def arrow_to_ipc(table: Any) -> bytes:
    """Write ``table`` as one uncompressed Arrow IPC stream."""
    import pyarrow as pa  # type: ignore[import-untyped]

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def arrow_from_ipc(data: bytes) -> Any:
    """Read a table from an IPC stream a peer sent, after checking its metadata.

    Raises:
        ValueError: the stream is compressed, malformed, or declares buffers outside it.
        NotSupported: pyarrow is not installed.
    """
    try:
        import pyarrow as pa
    except ImportError:
        raise NotSupported(
            "An isolated plugin sent an Arrow table, but pyarrow is not installed in the "
            "host; install flowstone-host[parquet]."
        ) from None
    try:
        _check_ipc(pa, data)
        table = pa.ipc.open_stream(data).read_all()
        table.validate(full=True)  # offsets pointing anywhere would crash whoever reads them
    except pa.ArrowException as exc:
        raise ValueError(f"malformed Arrow table: {exc}") from exc
    return table


_RECORD_BATCH, _DICTIONARY_BATCH = 3, 2


def _check_ipc(pa: Any, data: bytes) -> None:
    """Refuse compressed Arrow IPC, and buffers declared outside their message's body.

    Reads only the flatbuffer metadata of each message, before pyarrow allocates: an
    uncompressed buffer lies inside the body, so the table costs at most the frame's size.
    """
    reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(data))
    for message in reader:
        meta = message.metadata.to_pybytes()
        kind, header = _message_header(meta)
        if kind == _DICTIONARY_BATCH and header is not None:
            header = _field_table(meta, header, 1)
        elif kind != _RECORD_BATCH:
            continue
        if header is None:
            raise ValueError("an Arrow batch without its header")
        if _field_pos(meta, header, 3) is not None:
            raise ValueError("compressed Arrow IPC is refused; send it uncompressed")
        for offset, length in _buffers(meta, header):
            if offset < 0 or length < 0 or offset + length > message.body.size:
                raise ValueError("an Arrow buffer lies outside its message body")


def _u32(buf: bytes, pos: int) -> int:
    value: int = struct.unpack_from("<I", buf, pos)[0]
    return value


def _field_pos(buf: bytes, table: int, index: int) -> int | None:
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    vt_size = struct.unpack_from("<H", buf, vtable)[0]
    at = 4 + 2 * index
    if at >= vt_size:
        return None
    offset = struct.unpack_from("<H", buf, vtable + at)[0]
    return table + offset if offset else None


def _field_table(buf: bytes, table: int, index: int) -> int | None:
    pos = _field_pos(buf, table, index)
    return None if pos is None else pos + _u32(buf, pos)


def _message_header(buf: bytes) -> tuple[int, int | None]:
    root = _u32(buf, 0)
    kind_pos = _field_pos(buf, root, 1)
    kind = buf[kind_pos] if kind_pos is not None else 0
    return kind, _field_table(buf, root, 2)


def _buffers(buf: bytes, batch: int) -> list[tuple[int, int]]:
    vector = _field_table(buf, batch, 2)
    if vector is None:
        return []
    count = _u32(buf, vector)
    return [struct.unpack_from("<qq", buf, vector + 4 + 16 * i) for i in range(count)]
