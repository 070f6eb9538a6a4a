"""Fixtures of the AWS and Parquet plugin tests: clients and buckets on the moto server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest


@pytest.fixture(scope="session")
def s3_client(aws_endpoint: str) -> Any:
    """A raw boto3 S3 client on the moto server, for arranging and checking."""
    return boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture(scope="session")
def dynamodb_client(aws_endpoint: str) -> Any:
    """A raw boto3 DynamoDB client on the moto server."""
    return boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture(scope="session")
def new_bucket(s3_client: Any) -> Callable[[], str]:
    """Create a bucket with a fresh name and return the name."""

    def create() -> str:
        name = f"fs-{uuid.uuid4().hex[:16]}"
        s3_client.create_bucket(Bucket=name)
        return name

    return create


@pytest.fixture(scope="session")
def bucket(new_bucket: Callable[[], str]) -> str:
    """One bucket shared by the session's tests (each test uses its own names in it)."""
    return new_bucket()
