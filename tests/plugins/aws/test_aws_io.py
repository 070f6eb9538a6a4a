"""The s3 and parquet IO managers beyond the kit: layout, listing at scale, errors, secrets."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from flowstone_host.errors import (
    ConfigError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unavailable,
    normalize,
)
from flowstone_host.partitions import partition_key
from flowstone_host.plugins.aws._client import translate
from flowstone_host.plugins.aws.s3_io import S3IOManager
from flowstone_host.plugins.parquet.io_manager import ParquetIOManager

pytestmark = pytest.mark.integration


def _s3(endpoint: str, bucket: str, **config: Any) -> S3IOManager:
    return S3IOManager({"bucket": bucket, "endpoint_url": endpoint, **config})


def test_objects_are_laid_out_by_asset_and_partition_key(
    aws_endpoint: str, bucket: str, s3_client: Any
) -> None:
    io = _s3(aws_endpoint, bucket, prefix="/layout/")
    io.store("orders", {"a": 1}, "2024-01-01")
    io.store("orders", [1], None)
    body = s3_client.get_object(Bucket=bucket, Key="layout/orders/2024-01-01.json")["Body"]
    assert body.read() == b'{"a":1}'
    assert s3_client.head_object(Bucket=bucket, Key="layout/orders/~n.json")


def test_five_thousand_partitions_are_listed_through_pagination(
    aws_endpoint: str, bucket: str
) -> None:
    io = _s3(aws_endpoint, bucket, prefix=f"many-{uuid.uuid4().hex[:6]}")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: io.store("events", i, i), range(5000)))
    listed = io.list_partitions("events")
    assert len(listed) == 5000
    assert sorted(listed) == list(range(5000))


def test_format_is_chosen_per_call(aws_endpoint: str, bucket: str) -> None:
    io = _s3(aws_endpoint, bucket, prefix="per-call")
    table = pa.table({"x": [1, 2]})
    io.store("t", table, "p", format="parquet")
    assert io.load("t", "p", format="parquet").equals(table)
    assert not io.exists("t", "p")  # the json object of that partition was never written
    assert io.list_partitions("t") == ["p"]


def test_pickle_needs_opting_in(aws_endpoint: str, bucket: str) -> None:
    with pytest.raises(ConfigError, match="allow_pickle"):
        _s3(aws_endpoint, bucket, format="pickle")
    io = _s3(aws_endpoint, bucket)
    with pytest.raises(ConfigError, match="allow_pickle"):
        io.store("a", {1, 2}, "p", format="pickle", allow_pickle=True)


def test_large_values_go_up_in_parts(aws_endpoint: str, bucket: str, s3_client: Any) -> None:
    io = _s3(aws_endpoint, bucket, prefix="big", multipart_threshold_mb=5, multipart_chunksize_mb=5)
    value = "x" * (12 * 1024 * 1024)
    io.store("big", value, "p")
    etag = s3_client.head_object(Bucket=bucket, Key="big/big/p.json")["ETag"]
    assert etag.strip('"').endswith("-3"), f"{etag} is not a 3-part upload's ETag"
    assert io.load("big", "p") == value


def test_missing_bucket_is_a_config_error(aws_endpoint: str) -> None:
    io = _s3(aws_endpoint, "no-such-bucket-here")
    with pytest.raises(ConfigError) as caught:
        io.store("a", 1, "p")
    assert caught.value.retryable is False
    assert io.health_check().healthy is False


def test_missing_key_names_asset_and_partition(aws_endpoint: str, bucket: str) -> None:
    with pytest.raises(NotFound) as caught:
        _s3(aws_endpoint, bucket).load("orders", "2024-02-30")
    assert caught.value.asset == "orders" and caught.value.partition == "2024-02-30"
    assert "'orders'" in str(caught.value) and "2024-02-30" in str(caught.value)


def test_unreachable_endpoint_is_retryable(bucket: str) -> None:
    io = _s3("http://127.0.0.1:9", bucket, max_attempts=1, connect_timeout_s=1)
    with pytest.raises(Unavailable) as caught:
        io.exists("a", "p")
    assert caught.value.retryable is True


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": code}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("code", "status", "expected", "retryable"),
    [
        ("SlowDown", 503, Unavailable, True),
        ("ProvisionedThroughputExceededException", 400, Unavailable, True),
        ("InternalError", 500, Unavailable, True),
        ("Whatever", 502, Unavailable, True),
        ("RequestTimeout", 400, Timeout, True),
        ("AccessDenied", 403, PermissionDenied, False),
        ("NoSuchBucket", 404, ConfigError, False),
        ("ResourceNotFoundException", 400, ConfigError, False),
        ("NoSuchKey", 404, NotFound, False),
    ],
)
def test_aws_errors_are_normalized(
    aws_endpoint: str,
    bucket: str,
    code: str,
    status: int,
    expected: type[Exception],
    retryable: bool,
) -> None:
    error = translate(_client_error(code, status))
    assert type(error) is expected and error.retryable is retryable
    # The plugins teach normalize botocore's errors when they make their first client (boto3
    # is imported lazily): in a random order this test may be the first to use them.
    _s3(aws_endpoint, bucket).close()
    assert type(normalize(_client_error(code, status))) is expected  # the registered rule


SECRET_KEY, SECRET_TOKEN = "wJalrXUtnFEMI-VERY-SECRET", "FwoGZXIvYXdzEJr-SESSION-TOKEN"


def test_credentials_never_show(
    aws_endpoint: str, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flowstone_host")
    secrets = {"aws_secret_access_key": SECRET_KEY, "aws_session_token": SECRET_TOKEN}
    io = _s3(aws_endpoint, "no-such-bucket-here", aws_access_key_id="AKIDKEY", **secrets)
    with pytest.raises(ConfigError) as caught:
        io.store("a", 1, "p")
    shown = [repr(io), repr(io.config), str(io.config), str(caught.value), repr(caught.value)]
    shown += [str(caught.value.to_dict()), caplog.text, str(io.health_check())]
    for secret in (SECRET_KEY, SECRET_TOKEN, "AKIDKEY"):
        assert not any(secret in text for text in shown)
    assert io.config["aws_secret_access_key"] == "***"


def test_importing_the_plugins_imports_no_extra() -> None:
    code = (
        "import sys, flowstone_host, flowstone_host.plugins.aws.s3_io, "
        "flowstone_host.plugins.aws.s3_reader, flowstone_host.plugins.aws.dynamodb_reader, "
        "flowstone_host.plugins.parquet.io_manager\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_missing_extra_is_named() -> None:
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "from flowstone_host.plugins.aws.s3_io import S3IOManager\n"
        "try:\n    S3IOManager({'bucket': 'b'})\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ConfigError") and "flowstone-host[aws]" in out.stdout


def _sales(n: int, shift: int = 0) -> pa.Table:
    return pa.table({"id": list(range(n)), "amount": [float(i + shift) for i in range(n)]})


def test_parquet_partitions_read_back_as_a_hive_dataset(tmp_path: Path) -> None:
    io = ParquetIOManager({"root": str(tmp_path), "tuple_columns": ["region", "day"]})
    io.store("sales", _sales(3), "2024-01-01")
    io.store("sales", _sales(2, 10), "2024-01-02")
    assert sorted(p.name for p in (tmp_path / "sales").iterdir()) == [
        "partition=2024-01-01",
        "partition=2024-01-02",
    ]
    table = ds.dataset(tmp_path / "sales", partitioning="hive").to_table()
    days = sorted(zip(table["partition"].to_pylist(), table["id"].to_pylist(), strict=True))
    assert days[:3] == [("2024-01-01", 0), ("2024-01-01", 1), ("2024-01-01", 2)]
    assert days[3:] == [("2024-01-02", 0), ("2024-01-02", 1)]


def test_multi_dimensional_partitions_are_nested_folders(tmp_path: Path) -> None:
    io = ParquetIOManager({"root": str(tmp_path), "tuple_columns": ["region", "day"]})
    io.store("sales", _sales(2), ("eu", "2024-01-01"))
    io.store("sales", _sales(1), {"country": "fr", "city": "paris"})
    assert (tmp_path / "sales/region=eu/day=2024-01-01/part-0.parquet").is_file()
    assert (tmp_path / "sales/city=paris/country=fr/part-0.parquet").is_file()
    eu = ds.dataset(tmp_path / "sales/region=eu", partitioning="hive").to_table()
    assert eu["day"].to_pylist() == ["2024-01-01", "2024-01-01"]
    expected = [("eu", "2024-01-01"), {"country": "fr", "city": "paris"}]
    assert sorted(io.list_partitions("sales"), key=partition_key) == sorted(
        expected, key=partition_key
    )


def test_duckdb_reads_the_partition_column(tmp_path: Path) -> None:
    import duckdb  # in the test extra: another engine reads what the IO manager wrote

    io = ParquetIOManager({"root": str(tmp_path)})
    io.store("sales", _sales(3), "2024-01-01")
    rows = duckdb.sql(
        f"SELECT partition, count(*) FROM read_parquet('{tmp_path}/sales/*/*.parquet', "
        "hive_partitioning = true, hive_types_autocast = false) GROUP BY partition"
    ).fetchall()
    assert rows == [("2024-01-01", 3)]


def test_parquet_load_selects_columns_and_filters(tmp_path: Path) -> None:
    io = ParquetIOManager({"root": str(tmp_path)})
    io.store("sales", _sales(10), "p")
    loaded = io.load("sales", "p", columns=["id"], filters=[["id", ">=", 7]])
    assert loaded.column_names == ["id"] and loaded["id"].to_pylist() == [7, 8, 9]


def test_parquet_writes_use_the_configured_compression_and_row_groups(tmp_path: Path) -> None:
    io = ParquetIOManager({"root": str(tmp_path), "compression": "zstd", "row_group_size": 4})
    io.store("sales", _sales(10), "p")
    metadata = pq.ParquetFile(tmp_path / "sales/partition=p/part-0.parquet").metadata
    assert metadata.num_row_groups == 3
    assert metadata.row_group(0).column(0).compression == "ZSTD"
    io.store("sales", _sales(10), "p", compression="gzip", row_group_size=100)
    metadata = pq.ParquetFile(tmp_path / "sales/partition=p/part-0.parquet").metadata
    assert metadata.num_row_groups == 1
    assert metadata.row_group(0).column(0).compression == "GZIP"


def test_a_failed_parquet_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    io = ParquetIOManager({"root": str(tmp_path)})
    io.store("sales", _sales(3), "p")
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises for a bad option
        io.store("sales", _sales(5), "p", compression="no-such-codec")
    assert io.load("sales", "p").num_rows == 3
    assert [p.name for p in (tmp_path / "sales/partition=p").iterdir()] == ["part-0.parquet"]
    io.delete("sales", "p")
    assert list((tmp_path / "sales").iterdir()) == []
