"""Every AWS and Parquet plugin passes the conformance kit, over HTTP on the moto server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flowstone_host.plugins.aws.s3_io import S3IOManager
from flowstone_host.plugins.parquet.io_manager import ParquetIOManager
from flowstone_host.testing import IOManagerContract

pytestmark = pytest.mark.integration


class TestS3IOManagerJson(IOManagerContract):
    io_manager_class = pytest.fixture(lambda self: S3IOManager)

    @pytest.fixture
    def io_config(self, aws_endpoint: str, bucket: str) -> dict[str, Any]:
        return {"bucket": bucket, "endpoint_url": aws_endpoint, "prefix": "json"}


def _tables() -> list[Any]:
    return [
        pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}),
        pa.table({"id": [4], "amount": [2.5]}),
        pa.table({"day": pa.array([dt.date(2024, 1, 31)]), "flag": [True]}),
    ]


class _TableValues:
    @pytest.fixture
    def io_values(self) -> list[Any]:
        return _tables()

    @pytest.fixture
    def io_equal(self) -> Callable[[Any, Any], bool]:
        return lambda expected, loaded: bool(expected.equals(loaded))


class TestS3IOManagerParquet(_TableValues, IOManagerContract):
    io_manager_class = pytest.fixture(lambda self: S3IOManager)

    @pytest.fixture
    def io_config(self, aws_endpoint: str, bucket: str) -> dict[str, Any]:
        return {"bucket": bucket, "endpoint_url": aws_endpoint, "format": "parquet", "prefix": "pq"}


class TestS3IOManagerArrowPandas(_TableValues, IOManagerContract):
    @pytest.fixture
    def io_values(self) -> list[Any]:
        return [table.to_pandas() for table in _tables()]

    io_manager_class = pytest.fixture(lambda self: S3IOManager)

    @pytest.fixture
    def io_config(self, aws_endpoint: str, bucket: str) -> dict[str, Any]:
        return {"bucket": bucket, "endpoint_url": aws_endpoint, "format": "arrow", "prefix": "a"}


class TestS3IOManagerPickle(IOManagerContract):
    io_manager_class = pytest.fixture(lambda self: S3IOManager)

    @pytest.fixture
    def io_config(self, aws_endpoint: str, bucket: str) -> dict[str, Any]:
        return {
            "bucket": bucket,
            "endpoint_url": aws_endpoint,
            "format": "pickle",
            "allow_pickle": True,
            "prefix": "pk",
        }


class TestParquetIOManagerLocal(_TableValues, IOManagerContract):
    io_manager_class = pytest.fixture(lambda self: ParquetIOManager)

    @pytest.fixture
    def io_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"root": str(tmp_path)}


class TestParquetIOManagerPandas(_TableValues, IOManagerContract):
    @pytest.fixture
    def io_values(self) -> list[Any]:
        return [table.to_pandas() for table in _tables()]

    io_manager_class = pytest.fixture(lambda self: ParquetIOManager)

    @pytest.fixture
    def io_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"root": str(tmp_path), "compression": "zstd"}


class TestParquetIOManagerOnS3(_TableValues, IOManagerContract):
    io_manager_class = pytest.fixture(lambda self: ParquetIOManager)

    @pytest.fixture
    def io_config(self, aws_endpoint: str, bucket: str) -> dict[str, Any]:
        return {
            "root": f"s3://{bucket}/parquet-root",
            "endpoint_url": aws_endpoint,
            "region_name": "us-east-1",
        }
