"""Every AWS and Parquet plugin passes the conformance kit, over HTTP on the moto server."""

from __future__ import annotations

import pytest

from flowstone_host.plugins.aws.s3_io import S3IOManager
from flowstone_host.testing import IOManagerContract

pytestmark = pytest.mark.integration


class TestS3IOManagerJson(IOManagerContract):
    @pytest.fixture
    def io_manager(self, aws_endpoint: str, bucket: str) -> S3IOManager:
        return S3IOManager({"bucket": bucket, "endpoint_url": aws_endpoint, "prefix": "json"})
