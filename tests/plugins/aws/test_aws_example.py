"""config/examples/s3: the demo pipeline with its values in S3, by YAML alone, over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.integration


def test_the_demo_pipeline_stores_its_values_in_s3_by_config_alone(
    aws_endpoint: str, s3_client: Any, new_bucket: Callable[[], str], tmp_path: Path
) -> None:
    bucket = new_bucket()
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "plugins.d", tmp_path / "plugins.d")
    # the standard variables, read by boto3 itself: nothing in the YAML names the endpoint
    env = {**os.environ, "AWS_ENDPOINT_URL": aws_endpoint, "FLOWSTONE_S3_BUCKET": bucket}
    command = [sys.executable, "-m", "flowstone_host.cli", "materialize", "report"]
    run = subprocess.run(
        [*command, "--config", "config/examples/s3/host.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="flowstone-demo/")
    assets = {item["Key"].split("/")[1] for item in listed.get("Contents", [])}
    assert {"orders", "order_totals", "enriched_lines", "order_stats", "report"} <= assets
    assert assets & {"standard_report", "high_value_report"}  # the routed one
