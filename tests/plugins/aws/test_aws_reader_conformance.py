"""The s3 and dynamodb item readers pass the conformance kit, over HTTP on the moto server."""

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

from flowstone_host.plugins.aws._dynamo_values import from_dynamo
from flowstone_host.plugins.aws.dynamodb_reader import DynamoDBItemReader
from flowstone_host.plugins.aws.s3_reader import S3ItemReader
from flowstone_host.testing import ItemReaderContract

pytestmark = pytest.mark.integration

MakeReader = Callable[[list[Any]], S3ItemReader]


def _listed(s3_client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """The items the reader should give for ``prefix``: from a plain boto3 listing."""
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [
        {
            "key": o["Key"],
            "size": o["Size"],
            "etag": o["ETag"].strip('"'),
            "last_modified": o["LastModified"].isoformat(),
        }
        for page in pages
        for o in page.get("Contents", ())
    ]


class TestS3ReaderObjects(ItemReaderContract):
    @pytest.fixture
    def reader_items(self, s3_client: Any, bucket: str) -> list[Any]:
        prefix = f"objects-{uuid.uuid4().hex[:8]}/"
        for i in range(23):
            s3_client.put_object(Bucket=bucket, Key=f"{prefix}{i:03d}.txt", Body=b"x" * i)
        return _listed(s3_client, bucket, prefix)

    @pytest.fixture
    def make_item_reader(self, aws_endpoint: str, bucket: str) -> MakeReader:
        def make(items: list[Any]) -> S3ItemReader:
            prefix = items[0]["key"].rsplit("/", 1)[0] + "/" if items else "empty-prefix/"
            config = {"bucket": bucket, "prefix": prefix, "page_size": 4}
            return S3ItemReader({**config, "endpoint_url": aws_endpoint})

        return make


def _put(s3_client: Any, bucket: str, extension: str, body: bytes) -> str:
    key = f"records/{uuid.uuid4().hex}.{extension}"
    s3_client.put_object(Bucket=bucket, Key=key, Body=body)
    return key


class TestS3ReaderJsonLines(ItemReaderContract):
    @pytest.fixture
    def make_item_reader(self, aws_endpoint: str, bucket: str, s3_client: Any) -> MakeReader:
        keys: dict[str, str] = {}

        def make(items: list[Any]) -> S3ItemReader:
            text = "\n\n".join(json.dumps(item) for item in items) + "\n"
            key = keys.setdefault(text, _put(s3_client, bucket, "jsonl", text.encode()))
            config = {"bucket": bucket, "key": key, "chunk_bytes": 16}
            return S3ItemReader({**config, "endpoint_url": aws_endpoint})

        return make


class TestS3ReaderCsv(ItemReaderContract):
    @pytest.fixture
    def reader_items(self) -> list[Any]:
        items = [{"id": str(i), "name": f"item-{i}"} for i in range(23)]
        items[4]["name"] = 'quoted, with a "comma"\nand a newline'
        return items

    @pytest.fixture
    def make_item_reader(self, aws_endpoint: str, bucket: str, s3_client: Any) -> MakeReader:
        def make(items: list[Any]) -> S3ItemReader:
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=["id", "name"])
            writer.writeheader()
            writer.writerows(items)
            key = _put(s3_client, bucket, "csv", text.getvalue().encode())
            config = {"bucket": bucket, "key": key, "chunk_bytes": 10}
            return S3ItemReader({**config, "endpoint_url": aws_endpoint})

        return make


class TestS3ReaderParquet(ItemReaderContract):
    @pytest.fixture
    def make_item_reader(self, aws_endpoint: str, bucket: str, s3_client: Any) -> MakeReader:
        schema = pa.schema([("id", pa.int64()), ("name", pa.string())])

        def make(items: list[Any]) -> S3ItemReader:
            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(items, schema=schema), sink, row_group_size=5)
            key = _put(s3_client, bucket, "parquet", sink.getvalue())
            config = {"bucket": bucket, "key": key, "parquet_batch_rows": 3}
            return S3ItemReader({**config, "endpoint_url": aws_endpoint})

        return make


def _create_table(client: Any, name: str, range_key: bool) -> None:
    keys = [("pk", "HASH", "S")] + ([("sk", "RANGE", "N")] if range_key else [])
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": n, "KeyType": t} for n, t, _ in keys],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": a} for n, _, a in keys],
        BillingMode="PAY_PER_REQUEST",
    )


def _put_items(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    """Write items as a boto3 user would: TypeSerializer, floats as Decimal."""
    serialize = TypeSerializer().serialize
    for item in items:
        typed = {k: Decimal(str(v)) if isinstance(v, float) else v for k, v in item.items()}
        client.put_item(TableName=table, Item={k: serialize(v) for k, v in typed.items()})


@pytest.fixture(scope="module")
def query_table(dynamodb_client: Any) -> str:
    name = f"query-{uuid.uuid4().hex[:8]}"
    _create_table(dynamodb_client, name, range_key=True)
    return name


class TestDynamoDBReaderQuery(ItemReaderContract):
    """Query of one partition key: items come in sort-key order, as the kit expects."""

    @pytest.fixture
    def reader_items(self) -> list[Any]:
        pk = uuid.uuid4().hex
        return [
            {"pk": pk, "sk": i, "name": f"item-{i}", "price": i + 0.5, "tags": ["a", "b"]}
            for i in range(23)
        ]

    @pytest.fixture
    def make_item_reader(
        self, aws_endpoint: str, dynamodb_client: Any, query_table: str
    ) -> Callable[[list[Any]], DynamoDBItemReader]:
        written: set[str] = set()

        def make(items: list[Any]) -> DynamoDBItemReader:
            if items and items[0]["pk"] not in written:
                stored = [{**item, "tags": set(item["tags"])} for item in items]  # read sorted
                _put_items(dynamodb_client, query_table, stored)
                written.add(items[0]["pk"])
            pk = items[0]["pk"] if items else "nothing-here"
            config = {
                "table": query_table,
                "key_condition": "pk = :pk",
                "expression_values": {":pk": pk},
                "page_size": 4,
                "consistent_read": True,
            }
            return DynamoDBItemReader({**config, "endpoint_url": aws_endpoint})

        return make


class TestDynamoDBReaderScan(ItemReaderContract):
    """Scan of a table of its own; the items are listed in the order the server scans."""

    @pytest.fixture
    def table(self, dynamodb_client: Any) -> str:
        name = f"scan-{uuid.uuid4().hex[:8]}"
        _create_table(dynamodb_client, name, range_key=False)
        return name

    @pytest.fixture
    def reader_items(self, dynamodb_client: Any, table: str) -> list[Any]:
        _put_items(dynamodb_client, table, [{"pk": f"k{i:02d}", "n": i} for i in range(23)])
        pages = dynamodb_client.get_paginator("scan").paginate(TableName=table)
        return [from_dynamo(item) for page in pages for item in page["Items"]]

    @pytest.fixture
    def make_item_reader(
        self, aws_endpoint: str, dynamodb_client: Any, table: str
    ) -> Callable[[list[Any]], DynamoDBItemReader]:
        def make(items: list[Any]) -> DynamoDBItemReader:
            name = table
            if not items:
                name = f"empty-{uuid.uuid4().hex[:8]}"
                _create_table(dynamodb_client, name, range_key=False)
            config = {"table": name, "page_size": 5, "endpoint_url": aws_endpoint}
            return DynamoDBItemReader(config)

        return make
