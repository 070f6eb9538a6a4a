"""The package's front door: exactly the public surface, and light to import."""

from __future__ import annotations

import subprocess
import sys

import flowstone_host

PUBLIC = {
    # contracts and their value types
    "IOManager", "ItemReader", "ScatterCoordinator", "ParallelCoordinator",
    "RoutingCoordinator", "Resource", "Executor", "TelemetryEmitter",
    "Batch", "BarrierStatus", "ExecutionStatus", "Health", "Recorded",
    # errors
    "FlowStoneError", "NotFound", "NotSupported", "Conflict", "ValidationError", "ConfigError",
    "PermissionDenied", "Unavailable", "Timeout", "StorageError", "PluginLoadError",
    "IncompatibleContract", "PluginRefused", "PluginCrashed", "InternalError", "normalize",
    # telemetry, partitions, registries, the host
    "attach", "detach", "execute", "span", "partition_key", "parse_partition_key",
    "Entry", "Snapshot", "Host", "__version__",
}  # fmt: skip


def test_all_is_exactly_the_public_surface() -> None:
    assert set(flowstone_host.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(flowstone_host, name) is not None


def test_importing_the_contracts_pulls_in_no_host_machinery() -> None:
    heavy = ["yaml", "jsonschema", "stevedore", "cerberus", "watchdog", "prometheus_client"]
    code = f"import sys, flowstone_host; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
