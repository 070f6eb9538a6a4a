"""Parquet and S3 plugins against raw pyarrow and raw boto3, on a moto server of its own.

- Parquet IO manager store+load of a 1,000,000-row, 5-column table vs ``pq.write_table`` +
  ``pq.read_table`` of the same table: the target is 1.1x plus 5 ms, expressed as a ratio
  of this run's floor (``1.1 + 5 ms / floor``).
- S3 IO manager store+load of 10 MB (bytes, pickle format: the body is the value plus a
  few bytes) vs ``put_object`` + ``get_object`` on the same endpoint (1.2x).
- S3 item reader items/s vs a raw paginated ``list_objects_v2`` loop (at least 1/1.2 of
  the floor's rate). Floor and plugin runs alternate, after one warm-up run of each.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from bench._common import Result, print_results
from flowstone_host.plugins.aws.s3_io import S3IOManager
from flowstone_host.plugins.aws.s3_reader import S3ItemReader
from flowstone_host.plugins.parquet.io_manager import ParquetIOManager
from tests.moto_server import MotoServer

ROWS, OBJECTS, REPEATS = 1_000_000, 3_000, 5


def _paired(floor: Callable[[], None], measured: Callable[[], None]) -> tuple[float, float]:
    """Return the median seconds of ``floor`` and ``measured``, warmed up and alternated."""
    floor()
    measured()
    floors, values = [], []
    for _ in range(REPEATS):
        for fn, samples in ((floor, floors), (measured, values)):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return statistics.median(floors), statistics.median(values)


def _parquet(folder: Path) -> Result:
    table = pa.table({f"c{i}": pa.array(range(i, ROWS + i), pa.int64()) for i in range(4)})
    table = table.append_column("s", pa.array([f"v{i % 1000}" for i in range(ROWS)]))
    io, raw = ParquetIOManager({"root": str(folder / "io")}), folder / "raw.parquet"

    def floor() -> None:
        pq.write_table(table, raw)
        pq.read_table(raw)

    def measured() -> None:
        io.store("bench", table, "2024-01-01")
        io.load("bench", "2024-01-01")

    floor_s, value_s = _paired(floor, measured)
    target = 1.1 + 0.005 / floor_s
    return Result(
        "parquet store+load 1M x 5 (1.1x + 5 ms)", value_s * 1e3, floor_s * 1e3, "ms", target
    )


def _s3_io(endpoint: str, bucket: str, client: object) -> Result:
    io = S3IOManager(
        {"bucket": bucket, "endpoint_url": endpoint, "format": "pickle", "allow_pickle": True}
    )
    value = os.urandom(10 * 1024 * 1024)

    def floor() -> None:
        client.put_object(Bucket=bucket, Key="raw/blob", Body=value)  # type: ignore[attr-defined]
        client.get_object(Bucket=bucket, Key="raw/blob")["Body"].read()  # type: ignore[attr-defined]

    def measured() -> None:
        io.store("blob", value, "p")
        io.load("blob", "p")

    floor_s, value_s = _paired(floor, measured)
    return Result(
        "s3 IO store+load 10 MB vs put/get_object", value_s * 1e3, floor_s * 1e3, "ms", 1.2
    )


def _s3_reader(endpoint: str, bucket: str, client: object) -> Result:
    prefix = "listing/"
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: client.put_object(Bucket=bucket, Key=f"{prefix}{i:06d}", Body=b"x"),
                range(OBJECTS),
            )
        )  # type: ignore[attr-defined]

    def floor() -> None:
        request = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = client.list_objects_v2(**request)  # type: ignore[attr-defined]
            [o["Key"] for o in page.get("Contents", ())]
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def measured() -> None:
        reader = S3ItemReader({"bucket": bucket, "prefix": prefix, "endpoint_url": endpoint})
        while not reader.read(500).done:
            pass

    floor_s, value_s = _paired(floor, measured)
    return Result(
        "s3 reader items/s vs list_objects_v2 loop",
        OBJECTS / value_s,
        OBJECTS / floor_s,
        "/s",
        1 / 1.2,  # at least 1/1.2 of the raw rate
        higher_is_better=True,
    )


def main() -> bool:
    """Run the AWS and Parquet benchmarks; return whether every target was met."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        results.append(_parquet(Path(folder)))
    with MotoServer() as server:
        client = boto3.client("s3", endpoint_url=server.url)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        results.append(_s3_io(server.url, bucket, client))
        results.append(_s3_reader(server.url, bucket, client))
    return print_results("AWS and Parquet plugins", results)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
