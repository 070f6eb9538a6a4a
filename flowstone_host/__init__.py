"""flowstone-host: a plugin host for FlowStone's integration contracts."""

from importlib import metadata as _metadata

from .contracts import (
    BarrierStatus,
    Batch,
    ExecutionStatus,
    Executor,
    Health,
    IOManager,
    ItemReader,
    ParallelCoordinator,
    Recorded,
    Resource,
    RoutingCoordinator,
    ScatterCoordinator,
    TelemetryEmitter,
)
from .errors import (
    ConfigError,
    Conflict,
    FlowStoneError,
    IncompatibleContract,
    InternalError,
    NotFound,
    NotSupported,
    PermissionDenied,
    PluginCrashed,
    PluginLoadError,
    PluginRefused,
    StorageError,
    Timeout,
    Unavailable,
    ValidationError,
    normalize,
)
from .partitions import parse_partition_key, partition_key
from .registry import Entry, Snapshot
from .telemetry import attach, detach, execute, span

try:  # the one version: the distribution's metadata, set in pyproject.toml
    __version__ = _metadata.version("flowstone-host")
except _metadata.PackageNotFoundError:  # imported from a source tree never installed
    __version__ = "0+unknown"


def __getattr__(name: str) -> object:
    # Host pulls in the manifest, loading and daemon machinery: import it on first use, so
    # that plugins importing the contracts stay light.
    if name == "Host":
        from .host.lifecycle import Host

        return Host
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BarrierStatus",
    "Batch",
    "ConfigError",
    "Conflict",
    "Entry",
    "ExecutionStatus",
    "Executor",
    "FlowStoneError",
    "Health",
    "Host",
    "IOManager",
    "IncompatibleContract",
    "InternalError",
    "ItemReader",
    "NotFound",
    "NotSupported",
    "ParallelCoordinator",
    "PermissionDenied",
    "PluginCrashed",
    "PluginLoadError",
    "PluginRefused",
    "Recorded",
    "Resource",
    "RoutingCoordinator",
    "ScatterCoordinator",
    "Snapshot",
    "StorageError",
    "TelemetryEmitter",
    "Timeout",
    "Unavailable",
    "ValidationError",
    "__version__",
    "attach",
    "detach",
    "execute",
    "normalize",
    "parse_partition_key",
    "partition_key",
    "span",
]
