"""The ``s3`` item reader: the objects under a prefix, or the records of one object.

Invariants (besides the contract's):

- Memory is bounded whatever the source's size: one listing page (``page_size`` keys),
  or one chunk and one record of a JSON Lines / CSV object, or one record batch of a
  Parquet file, plus the batch being returned.
- A checkpoint names the position after the last item handed out, never after an item
  only fetched: the key itself for listings (``StartAfter`` on restore), the byte offset
  for JSON Lines and CSV, the row count for Parquet. A restored reader therefore yields
  exactly the items after it, with one request.
- One item of look-ahead tells ``done`` in the batch that returns the last item.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ...contracts.item_reader import ItemReader
from ...contracts.types import Batch
from ...errors import ConfigError, ValidationError
from . import _s3_records as records
from ._client import CLIENT_SCHEMA, checked_config, make_client, public_config, translate

__all__ = ["S3ItemReader"]

_FORMATS = {
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
    "csv": "csv",
    "parquet": "parquet",
}


def _object_item(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "key": entry["Key"],
        "size": int(entry["Size"]),
        "etag": str(entry.get("ETag", "")).strip('"'),
        "last_modified": entry["LastModified"].isoformat(),
    }


class S3ItemReader(ItemReader):
    """Scatter items from S3: object listings, or JSON Lines, CSV or Parquet records.

    Config (besides the shared AWS client keys):
        bucket: The bucket (required).
        prefix: Objects mode: list the objects whose keys start with it.
        start_after: Objects mode: begin after this key.
        key: Records mode: read the records of this one object instead.
        format: Records mode: ``jsonl``, ``csv`` or ``parquet`` (default: from the key's
            extension).
        page_size: Keys per ListObjectsV2 page (1 to 1000).
        chunk_bytes: Bytes per network read of JSON Lines and CSV.
        parquet_batch_rows: Rows per Parquet record batch.
        encoding: Text encoding of JSON Lines and CSV (default ``utf-8``).
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        **CLIENT_SCHEMA,
        "bucket": {"type": "string", "required": True, "empty": False},
        "prefix": {"type": "string", "default": ""},
        "start_after": {"type": "string", "nullable": True, "default": None},
        "key": {"type": "string", "nullable": True, "default": None},
        "format": {
            "type": "string",
            "allowed": sorted(_FORMATS),
            "nullable": True,
            "default": None,
        },
        "page_size": {"type": "integer", "min": 1, "max": 1000, "default": 1000},
        "chunk_bytes": {"type": "integer", "min": 1, "default": 1 << 20},
        "parquet_batch_rows": {"type": "integer", "min": 1, "default": 10_000},
        "encoding": {"type": "string", "default": "utf-8"},
    }

    def __init__(
        self, config: Mapping[str, Any] | None = None, deps: Mapping[str, Any] | None = None
    ) -> None:
        checked = checked_config("s3 reader", self.config_schema, config)
        public, secrets = public_config(checked)
        super().__init__(public, deps)
        self.bucket: str = public["bucket"]
        self._key: str | None = public["key"]
        self._format = self._format_of(public) if self._key else "objects"
        self._client = make_client("s3", public, secrets)
        self._done = False
        self._items: Iterator[tuple[Any, Any]] | None = None  # (item, position after it)
        self._peeked: deque[tuple[Any, Any]] = deque(maxlen=1)
        self._position: Any = self._start_position()
        self._parquet: Any = None

    def __repr__(self) -> str:
        where = self._key or self.config["prefix"]
        return f"S3ItemReader(bucket={self.bucket!r}, source={where!r}, format={self._format!r})"

    def _format_of(self, config: Mapping[str, Any]) -> str:
        name = config["format"] or str(self._key).rsplit(".", 1)[-1].lower()
        if name not in _FORMATS:
            raise ConfigError(
                f"Cannot tell the format of s3://{self.bucket}/{self._key}: set format to "
                "jsonl, csv or parquet.",
                details={"key": self._key},
            )
        return _FORMATS[name]

    def _start_position(self) -> Any:
        if self._format == "objects":
            return self.config["start_after"]
        return {"offset": 0, "header": None} if self._format == "csv" else 0

    def read(self, batch_size: int) -> Batch:
        if batch_size < 1:
            raise ValidationError(f"batch_size must be at least 1, got {batch_size}")
        if self._done:
            return Batch([], True)
        items: list[Any] = []
        while len(items) < batch_size and self._fill():
            item, self._position = self._peeked.popleft()
            items.append(item)
        self._done = not self._fill()
        return Batch(items, self._done)

    def _fill(self) -> bool:
        """Make sure one item waits in the look-ahead; return False at the end."""
        if self._peeked:
            return True
        if self._items is None:
            self._items = self._open()
        try:
            self._peeked.append(next(self._items))
        except StopIteration:
            return False
        except Exception as exc:
            self._items = None  # reopen from the last position on the next read
            raise translate(
                exc, f"s3://{self.bucket}/{self._key or self.config['prefix']}"
            ) from exc
        return True

    def _open(self) -> Iterator[tuple[Any, Any]]:
        chunk, encoding = self.config["chunk_bytes"], self.config["encoding"]
        if self._format == "objects":
            return self._objects(self._position)
        if self._format == "jsonl":
            return records.jsonl_records(
                self._client, self.bucket, str(self._key), self._position, chunk, encoding
            )
        if self._format == "csv":
            return records.csv_records(
                self._client, self.bucket, str(self._key), self._position, chunk, encoding
            )
        rows = self.config["parquet_batch_rows"]
        return records.parquet_records(self._parquet_file(), self._position, rows)

    def _parquet_file(self) -> Any:
        if self._parquet is None:
            self._parquet = records.parquet_file(
                self._client, self.bucket, str(self._key), self.config["chunk_bytes"]
            )
        return self._parquet

    def _objects(self, after: str | None) -> Iterator[tuple[dict[str, Any], str]]:
        request: dict[str, Any] = {
            "Bucket": self.bucket,
            "Prefix": self.config["prefix"],
            "MaxKeys": self.config["page_size"],
        }
        if after:
            request["StartAfter"] = after
        while True:
            page = self._client.list_objects_v2(**request)
            for entry in page.get("Contents", ()):
                yield _object_item(entry), entry["Key"]
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def count(self) -> int | None:
        if self._format != "parquet":
            return None
        return int(self._parquet_file().metadata.num_rows)

    def checkpoint(self) -> dict[str, Any]:
        return {"format": self._format, "position": self._position, "done": self._done}

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        try:
            if checkpoint["format"] != self._format:
                raise ValueError(f"format {checkpoint['format']!r}")
            position, done = checkpoint["position"], bool(checkpoint["done"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"Not a checkpoint of this s3 reader ({self._format}): missing or bad {exc}"
            ) from None
        self.close()
        self._position, self._done = position, done

    def close(self) -> None:
        close = getattr(self._items, "close", None)
        self._items = None
        self._peeked.clear()
        if close is not None:
            close()
