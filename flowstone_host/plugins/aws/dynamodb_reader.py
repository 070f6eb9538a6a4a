"""The ``dynamodb`` item reader: a table's items through paginated Scan or Query.

Invariants (besides the contract's):

- Items are plain Python (:mod:`._dynamo_values`): no ``Decimal``, no sets, no typed JSON.
- A checkpoint holds, per scan segment, the key of the last item handed out from it (and
  whether the segment is finished); a restore passes that key as ``ExclusiveStartKey``,
  so each segment resumes exactly after it. Items fetched but not handed out are fetched
  again, never skipped.
- With ``segments > 1`` the segments' pages are fetched concurrently (a parallel scan);
  items of one segment keep their order, segments are interleaved page by page.
- Memory holds at most one page per segment.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...contracts.item_reader import ItemReader
from ...contracts.types import Batch
from ...errors import ConfigError, ValidationError
from ._client import CLIENT_SCHEMA, checked_config, make_client, public_config, translate
from ._dynamo_values import from_dynamo, key_from_json, key_to_json, to_dynamo

__all__ = ["DynamoDBItemReader"]


@dataclass
class _Segment:
    """One scan segment's position: what was handed out, what was fetched."""

    after: dict[str, Any] | None = None  # typed key of the last item handed out
    cursor: dict[str, Any] | None = None  # ExclusiveStartKey of the next page to fetch
    fetched_all: bool = False
    buffer: deque[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=deque)

    @property
    def finished(self) -> bool:
        return self.fetched_all and not self.buffer


class DynamoDBItemReader(ItemReader):
    """Scatter items from a DynamoDB table (Scan, parallel Scan, or Query).

    Config (besides the shared AWS client keys):
        table: The table name (required).
        key_condition: A Query's ``KeyConditionExpression``; without it the table is scanned.
        filter_expression, projection: ``FilterExpression``, ``ProjectionExpression``
            (a projection must include the key attributes).
        expression_names: ``ExpressionAttributeNames``.
        expression_values: ``ExpressionAttributeValues`` as plain values
            (``{":pk": "a"}``), converted to DynamoDB's types.
        index_name: Read this secondary index instead of the table.
        consistent_read: Strongly consistent reads.
        segments: Parallel scan segments (Scan only).
        page_size: ``Limit`` per request (default: DynamoDB's 1 MB pages).
        key_attributes: The key's attribute names (default: read with DescribeTable).
    """

    contract_version = "1.0.0"
    plugin_version = "1.0.0"
    config_schema: ClassVar[dict[str, Any]] = {
        **CLIENT_SCHEMA,
        "table": {"type": "string", "required": True, "empty": False},
        "key_condition": {"type": "string", "nullable": True, "default": None},
        "filter_expression": {"type": "string", "nullable": True, "default": None},
        "projection": {"type": "string", "nullable": True, "default": None},
        "expression_names": {"type": "dict", "nullable": True, "default": None},
        "expression_values": {"type": "dict", "nullable": True, "default": None},
        "index_name": {"type": "string", "nullable": True, "default": None},
        "consistent_read": {"type": "boolean", "default": False},
        "segments": {"type": "integer", "min": 1, "max": 1_000_000, "default": 1},
        "page_size": {"type": "integer", "min": 1, "nullable": True, "default": None},
        "key_attributes": {"type": "list", "schema": {"type": "string"}, "nullable": True},
    }

    def __init__(
        self, config: Mapping[str, Any] | None = None, deps: Mapping[str, Any] | None = None
    ) -> None:
        checked = checked_config("dynamodb reader", self.config_schema, config)
        public, secrets = public_config(checked)
        super().__init__(public, deps)
        self.table: str = public["table"]
        self._query = bool(public["key_condition"])
        if self._query and public["segments"] > 1:
            raise ConfigError("segments > 1 is a parallel Scan: remove key_condition or segments.")
        self._client = make_client("dynamodb", public, secrets)
        self._request = self._base_request(public)
        self._segments = [_Segment() for _ in range(public["segments"])]
        self._key_names: list[str] | None = public.get("key_attributes") or None
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"DynamoDBItemReader(table={self.table!r}, segments={len(self._segments)})"

    @staticmethod
    def _base_request(config: Mapping[str, Any]) -> dict[str, Any]:
        names = {
            "TableName": "table",
            "KeyConditionExpression": "key_condition",
            "FilterExpression": "filter_expression",
            "ProjectionExpression": "projection",
            "ExpressionAttributeNames": "expression_names",
            "IndexName": "index_name",
            "Limit": "page_size",
        }
        request = {api: config[key] for api, key in names.items() if config.get(key)}
        if config.get("expression_values"):
            values = config["expression_values"].items()
            request["ExpressionAttributeValues"] = {k: to_dynamo(v) for k, v in values}
        if config["consistent_read"]:
            request["ConsistentRead"] = True
        if config["segments"] > 1:
            request["TotalSegments"] = config["segments"]
        return request

    def _call(self, operation: str, **request: Any) -> Any:
        try:
            return getattr(self._client, operation)(**request)
        except Exception as exc:
            raise translate(exc, f"table {self.table!r}", table=self.table) from exc

    def _keys(self) -> list[str]:
        if self._key_names is None:
            table = self._call("describe_table", TableName=self.table)["Table"]
            schemas = [table["KeySchema"]]
            index = self._request.get("IndexName")
            for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                schemas += [i["KeySchema"] for i in table.get(kind, ()) if i["IndexName"] == index]
            self._key_names = list(dict.fromkeys(k["AttributeName"] for s in schemas for k in s))
        return self._key_names

    def _fetch(self, number: int) -> None:
        """Fetch the next page of segment ``number`` into its buffer."""
        segment, request = self._segments[number], dict(self._request)
        if len(self._segments) > 1:
            request["Segment"] = number
        if segment.cursor:
            request["ExclusiveStartKey"] = segment.cursor
        page = self._call("query" if self._query else "scan", **request)
        keys = self._keys()
        for raw in page.get("Items", ()):
            missing = [name for name in keys if name not in raw]
            if missing:
                raise ConfigError(f"Items of {self.table!r} lack key attributes {missing}.")
            segment.buffer.append(({name: raw[name] for name in keys}, raw))
        segment.cursor = page.get("LastEvaluatedKey")
        segment.fetched_all = segment.cursor is None

    def _fill(self) -> bool:
        """Fetch until some segment has an item waiting; return False when all are done."""
        while not any(s.buffer for s in self._segments):
            wanted = [i for i, s in enumerate(self._segments) if not s.fetched_all]
            if not wanted:
                return False
            if len(wanted) == 1:
                self._fetch(wanted[0])
                continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self._segments), "dynamodb-scan")
            for future in [self._pool.submit(self._fetch, i) for i in wanted]:
                future.result()
        return True

    def read(self, batch_size: int) -> Batch:
        if batch_size < 1:
            raise ValidationError(f"batch_size must be at least 1, got {batch_size}")
        items: list[Any] = []
        while len(items) < batch_size and self._fill():
            for segment in self._segments:
                while segment.buffer and len(items) < batch_size:
                    segment.after, raw = segment.buffer.popleft()
                    items.append(from_dynamo(raw))
        return Batch(items, not self._fill())

    def checkpoint(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "segments": [
                {"after": None if s.after is None else key_to_json(s.after), "done": s.finished}
                for s in self._segments
            ],
        }

    def restore(self, checkpoint: Mapping[str, Any]) -> None:
        try:
            saved = list(checkpoint["segments"])
            if checkpoint["table"] != self.table or len(saved) != len(self._segments):
                raise ValueError("table or segment count")
            positions = [
                (None if s["after"] is None else key_from_json(s["after"]), bool(s["done"]))
                for s in saved
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"Not a checkpoint of this dynamodb reader (table {self.table!r}, "
                f"{len(self._segments)} segments): missing or bad {exc}"
            ) from None
        self._segments = [
            _Segment(after=after, cursor=after, fetched_all=done) for after, done in positions
        ]

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
