"""Manifest validation against the floor of libyaml plus a prebuilt JSON Schema validator.

Two figures, each next to its floor from the same run:

- one typical manifest file (the shipped embedded defaults and demo pipeline, 14
  documents), validated end to end through all three layers (safe positioned reading,
  JSON Schema, cross-references, plugin config with cerberus) and built into the model;
- a folder of 500 such files (4 documents each), checked together as one set.

The floor reads the same bytes, parses them with ``yaml.load_all(..., CSafeLoader)`` and
runs the same Draft 2020-12 validator (built once) over every document: the least any
checker of this schema must do. Ours runs cold each time: the memo of plugin configs
already found valid is cleared first (within one run, repeated configs still hit it).
Target: 1.5x. Plain ``yaml.safe_load`` never uses libyaml and alone costs several times
the floor.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bench._common import Result, print_results
from flowstone_host.loading.catalog import installed
from flowstone_host.manifest import plugin_config
from flowstone_host.manifest.host_config import HostConfig
from flowstone_host.manifest.schema import manifest_validator
from flowstone_host.manifest.validate import validate_paths

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.5
FOLDER_FILES = 500

_FOLDER_TEMPLATE = """\
apiVersion: flowstone/v1
kind: IOManager
metadata: {{name: store_{i}}}
spec:
  plugin: memory
  config: {{copy: true}}
---
apiVersion: flowstone/v1
kind: Asset
metadata: {{name: raw_{i}}}
spec:
  compute: flowstone_host.examples.demo_assets:orders
  io_manager: store_{i}
  partitions: ["2024-01-01", "2024-01-02"]
---
apiVersion: flowstone/v1
kind: Asset
metadata: {{name: totals_{i}}}
spec:
  compute: flowstone_host.examples.demo_assets:order_totals
  deps: [raw_{i}]
  io_manager: store_{i}
  io_config: {{copy: false}}
---
apiVersion: flowstone/v1
kind: Asset
metadata: {{name: stats_{i}}}
spec:
  deps: [totals_{i}]
  parallel:
    branches:
      count: {{compute: "flowstone_host.examples.demo_assets:count_orders"}}
      revenue: {{compute: "flowstone_host.examples.demo_assets:sum_orders"}}
    join: flowstone_host.examples.demo_assets:join_stats
"""


def _floor(files: list[Path]) -> None:
    validator = manifest_validator()
    for file in files:
        for document in yaml.load_all(file.read_bytes(), Loader=yaml.CSafeLoader):
            for _ in validator.iter_errors(document):
                pass


def _ours(files: list[Path], host: HostConfig) -> None:
    plugin_config._VALID.clear()  # cold: no config checked by an earlier run is reused
    report = validate_paths(files, host, environ={}, catalog=installed(host))
    assert report.ok, report.to_text()


def _timed_ms(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _pair(name: str, files: list[Path], host: HostConfig, repeats: int) -> Result:
    """Time ours and the floor alternately, so load from elsewhere hits both alike."""
    _ours(files, host)  # warm: imports, plugin classes, cerberus validators
    _floor(files)
    floors, values = [], []
    for _ in range(repeats):
        floors.append(_timed_ms(lambda: _floor(files)))
        values.append(_timed_ms(lambda: _ours(files, host)))
    return Result(name, statistics.median(values), statistics.median(floors), "ms", TARGET)


def main() -> bool:
    """Run both figures; return whether they met the target."""
    host = HostConfig.defaults(REPO / "config")
    with tempfile.TemporaryDirectory() as tmp:
        typical = Path(tmp) / "typical.yaml"
        parts = [
            (REPO / "plugins.d" / n).read_text()
            for n in ("00-embedded.yaml", "20-demo-pipeline.yaml")
        ]
        typical.write_text("\n---\n".join(parts))
        folder = Path(tmp) / "plugins.d"
        folder.mkdir()
        for i in range(FOLDER_FILES):
            (folder / f"m{i:03}.yaml").write_text(_FOLDER_TEMPLATE.format(i=i))
        files = sorted(folder.glob("*.yaml"))
        results = [
            _pair("validate one typical file (14 docs, 3 layers)", [typical], host, 300),
            _pair(f"validate a folder of {FOLDER_FILES} files (2000 docs)", files, host, 7),
        ]
    return print_results("manifest validation vs CSafeLoader + prebuilt validator", results)
