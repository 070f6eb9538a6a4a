"""The contracts plugins implement, one ABC per module, and their versions."""

from .executor import Executor, Job, JobFuture, JobHandler
from .io_manager import IOManager, Partition
from .item_reader import ItemReader
from .parallel import ParallelCoordinator
from .plugin import Plugin
from .resource import Resource
from .routing import RoutingCoordinator
from .scatter import ScatterCoordinator, check_tolerated, threshold_exceeded
from .telemetry_emitter import TelemetryEmitter
from .types import BarrierStatus, Batch, ExecutionStatus, Health, Recorded
from .versions import CONTRACTS, Compatibility, Contract, check_compatibility, contract_for

__all__ = [
    "CONTRACTS",
    "BarrierStatus",
    "Batch",
    "Compatibility",
    "Contract",
    "ExecutionStatus",
    "Executor",
    "Health",
    "IOManager",
    "ItemReader",
    "Job",
    "JobFuture",
    "JobHandler",
    "ParallelCoordinator",
    "Partition",
    "Plugin",
    "Recorded",
    "Resource",
    "RoutingCoordinator",
    "ScatterCoordinator",
    "TelemetryEmitter",
    "check_compatibility",
    "check_tolerated",
    "contract_for",
    "threshold_exceeded",
]
