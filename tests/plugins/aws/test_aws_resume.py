"""Readers cut off mid-stream and resumed in a fresh reader yield every item exactly once.

Each test reads a batch, takes a checkpoint, drops the reader (as a killed worker would)
and restores a new one from the JSON-persisted checkpoint, until the source is done.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from boto3.dynamodb.types import TypeSerializer

from flowstone_host.contracts.item_reader import ItemReader
from flowstone_host.plugins.aws.dynamodb_reader import DynamoDBItemReader
from flowstone_host.plugins.aws.s3_reader import S3ItemReader

pytestmark = pytest.mark.integration


def read_with_restarts(new: Callable[[], ItemReader], batch_size: int) -> list[Any]:
    """Read to the end, replacing the reader by a restored one after every batch."""
    read: list[Any] = []
    reader = new()
    for _ in range(200):  # every source here needs fewer reads
        batch = reader.read(batch_size)
        read.extend(batch.items)
        checkpoint = json.loads(json.dumps(reader.checkpoint()))
        reader.close()
        if batch.done:
            return read
        reader = new()
        reader.restore(checkpoint)
    raise AssertionError("the reader never said done")


def _put(s3_client: Any, bucket: str, key: str, body: bytes) -> str:
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def test_object_listing_resumes_after_the_last_key(
    aws_endpoint: str, bucket: str, s3_client: Any
) -> None:
    prefix = f"resume-{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}{i:04d}" for i in range(120)]
    for key in keys:
        _put(s3_client, bucket, key, b"x")
    config = {"bucket": bucket, "prefix": prefix, "page_size": 7, "endpoint_url": aws_endpoint}
    items = read_with_restarts(lambda: S3ItemReader(config), 11)
    assert [item["key"] for item in items] == keys
    assert {item["size"] for item in items} == {1}


def test_json_lines_resume_at_the_byte_offset(
    aws_endpoint: str, bucket: str, s3_client: Any
) -> None:
    records = [{"id": i, "text": "é" * (i % 5)} for i in range(500)]
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    key = _put(s3_client, bucket, f"resume/{uuid.uuid4().hex}.jsonl", body)
    config = {"bucket": bucket, "key": key, "chunk_bytes": 64, "endpoint_url": aws_endpoint}
    assert read_with_restarts(lambda: S3ItemReader(config), 37) == records


def test_csv_resumes_across_quoted_newlines(aws_endpoint: str, bucket: str, s3_client: Any) -> None:
    rows = [{"id": str(i), "note": f"line {i}\nsecond, part" if i % 3 else ""} for i in range(300)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["id", "note"])
    writer.writeheader()
    writer.writerows(rows)
    key = _put(s3_client, bucket, f"resume/{uuid.uuid4().hex}.csv", text.getvalue().encode())
    config = {"bucket": bucket, "key": key, "chunk_bytes": 50, "endpoint_url": aws_endpoint}
    assert read_with_restarts(lambda: S3ItemReader(config), 29) == rows


def test_parquet_resumes_inside_a_row_group(aws_endpoint: str, bucket: str, s3_client: Any) -> None:
    table = pa.table({"id": list(range(1000)), "name": [f"n{i}" for i in range(1000)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=128)
    key = _put(s3_client, bucket, f"resume/{uuid.uuid4().hex}.parquet", sink.getvalue())
    config = {"bucket": bucket, "key": key, "parquet_batch_rows": 50}
    config["endpoint_url"] = aws_endpoint
    assert S3ItemReader(config).count() == 1000
    assert read_with_restarts(lambda: S3ItemReader(config), 97) == table.to_pylist()


@pytest.fixture(scope="module")
def scan_table(dynamodb_client: Any) -> tuple[str, list[dict[str, Any]]]:
    """A table of 400 items with numbers, sets, binary and nested values."""
    name = f"resume-{uuid.uuid4().hex[:8]}"
    dynamodb_client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    serialize, items = TypeSerializer().serialize, []
    for i in range(400):
        item = {
            "pk": f"item-{i:04d}",
            "n": i,
            "price": Decimal(i) / 4,
            "tags": {"z", "a"},
            "blob": bytes([i % 256]),
            "nested": {"list": [1, Decimal("2.5")], "flag": True, "none": None},
        }
        dynamodb_client.put_item(TableName=name, Item={k: serialize(v) for k, v in item.items()})
        items.append(item)
    expected = [
        {
            **item,
            "price": i / 4 if i % 4 else i // 4,
            "tags": ["a", "z"],
            "nested": {"list": [1, 2.5], "flag": True, "none": None},
        }
        for i, item in enumerate(items)
    ]
    return name, expected


def _by_pk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: item["pk"])


@pytest.mark.parametrize("segments", [1, 4])
def test_dynamodb_scan_resumes_per_segment(
    aws_endpoint: str, scan_table: tuple[str, list[dict[str, Any]]], segments: int
) -> None:
    name, expected = scan_table
    config = {"table": name, "segments": segments, "page_size": 9, "endpoint_url": aws_endpoint}
    items = read_with_restarts(lambda: DynamoDBItemReader(config), 23)
    assert len(items) == len(expected), "an item was lost or repeated"
    assert _by_pk(items) == expected
    assert all(type(item["n"]) is int and type(item["blob"]) is bytes for item in items)


def test_parallel_scan_splits_the_table_between_segments(
    aws_endpoint: str, scan_table: tuple[str, list[dict[str, Any]]]
) -> None:
    name, expected = scan_table
    reader = DynamoDBItemReader({"table": name, "segments": 4, "endpoint_url": aws_endpoint})
    batch = reader.read(1000)
    assert batch.done and len(batch.items) == len(expected)
    segments = reader.checkpoint()["segments"]
    reader.close()  # stops the scan's thread pool
    assert all(s["after"] is not None and s["done"] for s in segments), segments
