"""Records of one S3 object, streamed in constant memory, each with its resume position.

Every generator here yields ``(record, position)``: ``position`` is what a reader stores in
its checkpoint once it has handed ``record`` out, and starting the same generator at that
position yields exactly the records after it. Positions are:

- JSON Lines and CSV: the byte offset just past the record; the object is read from there
  with one ranged GET (``Range: bytes=N-``) and split into lines chunk by chunk, so memory
  holds one chunk and one line whatever the object's size. Blank lines are not records.
  CSV records may span lines (quoted newlines); the header is the first record.
- Parquet: the number of rows before the next one; a restore opens the file's footer,
  skips whole row groups, then the rows inside the group. The file is read through ranged
  GETs (:class:`S3File`), one record batch at a time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from ..parquet._tables import pq
from ._client import translate

__all__ = ["S3File", "csv_records", "jsonl_records", "parquet_records"]

Records = Iterator[tuple[Any, Any]]


def _ranged_lines(client: Any, bucket: str, key: str, start: int, chunk: int) -> Iterator[bytes]:
    """Yield the object's lines from byte ``start`` on, each with its line ending."""
    try:
        body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-")["Body"]
    except Exception as exc:
        error = translate(exc, f"s3://{bucket}/{key}", bucket=bucket, key=key)
        if (error.details or {}).get("aws_code") == "InvalidRange":
            return  # start is the end of the object: nothing is left
        raise error from exc
    try:
        pending = b""
        for data in body.iter_chunks(chunk):
            pending += data
            lines = pending.splitlines(keepends=True)
            pending = lines.pop() if lines and not lines[-1].endswith((b"\n", b"\r")) else b""
            yield from lines
        if pending:
            yield pending
    finally:
        body.close()


def jsonl_records(
    client: Any, bucket: str, key: str, position: int, chunk: int, encoding: str
) -> Records:
    """Yield ``(record, byte offset after it)`` for each JSON line from ``position``."""
    offset = position
    for line in _ranged_lines(client, bucket, key, position, chunk):
        offset += len(line)
        text = line.decode(encoding).strip()
        if text:
            yield json.loads(text), offset


class _CountingLines:
    """An iterator of decoded lines that counts the bytes handed to the CSV parser."""

    def __init__(self, lines: Iterator[bytes], start: int, encoding: str) -> None:
        self._lines, self.offset, self._encoding = lines, start, encoding

    def __iter__(self) -> _CountingLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.offset += len(line)
        return line.decode(self._encoding)


def csv_records(
    client: Any, bucket: str, key: str, position: dict[str, Any], chunk: int, encoding: str
) -> Records:
    """Yield ``(row as a dict, {"offset", "header"})`` for each CSV record after the header.

    ``position`` is ``{"offset": 0, "header": None}`` at the start; the header travels in the
    position so that a resumed read need not fetch the object's first line again.
    """
    header = position.get("header")
    lines = _CountingLines(
        _ranged_lines(client, bucket, key, int(position["offset"]), chunk), 0, encoding
    )
    lines.offset = int(position["offset"])
    for row in csv.reader(lines):
        if not row:
            continue
        if header is None:
            header = row
            continue
        yield dict(zip(header, row, strict=False)), {"offset": lines.offset, "header": header}


class S3File(io.RawIOBase):
    """A read-only, seekable file over one S3 object: each read is a ranged GET."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise translate(exc, f"s3://{bucket}/{key}", bucket=bucket, key=key) from exc
        self.size = int(head["ContentLength"])
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        end = min(self._position + len(buffer), self.size)
        if end <= self._position:
            return 0
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end - 1}"
            )
        except Exception as exc:
            raise translate(exc, f"s3://{self._bucket}/{self._key}") from exc
        data = response["Body"].read()
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def parquet_file(client: Any, bucket: str, key: str, buffer_size: int) -> Any:
    """Open the Parquet file ``s3://bucket/key`` for streaming reads."""
    return pq().ParquetFile(io.BufferedReader(S3File(client, bucket, key), buffer_size))


def parquet_records(parquet: Any, position: int, batch_rows: int) -> Records:
    """Yield ``(row as a dict, rows read so far)`` for each row after the first ``position``."""
    metadata, first_group, skip = parquet.metadata, 0, position
    while first_group < metadata.num_row_groups:
        rows = metadata.row_group(first_group).num_rows
        if skip < rows:
            break
        skip -= rows
        first_group += 1
    groups = list(range(first_group, metadata.num_row_groups))
    if not groups:
        return
    done = position - skip
    for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=groups):
        for row in batch.to_pylist():
            done += 1
            if done > position:
                yield row, done
