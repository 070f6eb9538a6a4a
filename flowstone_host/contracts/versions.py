"""Each contract's kind, entry-point namespace and versions, and the compatibility check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import IncompatibleContract
from .executor import Executor
from .io_manager import IOManager
from .item_reader import ItemReader
from .parallel import ParallelCoordinator
from .plugin import Plugin
from .resource import Resource
from .routing import RoutingCoordinator
from .scatter import ScatterCoordinator
from .telemetry_emitter import TelemetryEmitter

__all__ = [
    "CONTRACTS",
    "Compatibility",
    "Contract",
    "check_compatibility",
    "contract_for",
    "declared_contract_version",
    "parse_version",
]

_SEMVER = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


@dataclass(frozen=True, slots=True)
class Contract:
    """One contract: the manifest ``kind``, its entry-point ``namespace``, ABC and versions.

    A plugin is compatible when its declared version has the same major as ``current`` and
    is not below ``minimum``.
    """

    kind: str
    registry: str
    namespace: str
    abc: type[Plugin]
    current: str = "1.0.0"
    minimum: str = "1.0.0"

    @property
    def supported(self) -> str:
        """The range this host accepts, as text for error messages."""
        major = parse_version(self.current)[0]
        return f">={self.minimum},<{major + 1}.0.0"


def _contract(kind: str, registry: str, abc: type[Plugin], current: str = "1.0.0") -> Contract:
    return Contract(kind, registry, f"flowstone.{registry}", abc, current)


CONTRACTS: dict[str, Contract] = {
    c.kind: c
    for c in (
        _contract("IOManager", "io_managers", IOManager),
        _contract("ItemReader", "item_readers", ItemReader),
        # 1.1: the optional durable-run methods (find_barrier, checkpoints, record_outcomes)
        # 1.2: the optional operating methods (retry_failed, set_tolerated_failures)
        _contract("ScatterCoordinator", "scatter_coordinators", ScatterCoordinator, "1.2.0"),
        _contract("ParallelCoordinator", "parallel_coordinators", ParallelCoordinator),
        _contract("RoutingCoordinator", "routing_coordinators", RoutingCoordinator),
        _contract("Resource", "resources", Resource),
        _contract("TelemetryEmitter", "telemetry_emitters", TelemetryEmitter),
        # 1.1: the optional remote methods (enqueue, serve) for worker processes
        _contract("Executor", "executors", Executor, "1.1.0"),
    )
}


def contract_for(kind_or_abc: str | type[Plugin]) -> Contract:
    """Return the contract of a manifest kind (``"IOManager"``) or of a plugin class.

    Raises:
        KeyError: no contract matches.
    """
    if isinstance(kind_or_abc, str):
        return CONTRACTS[kind_or_abc]
    for contract in CONTRACTS.values():
        if issubclass(kind_or_abc, contract.abc):
            return contract
    raise KeyError(kind_or_abc.__name__)


def parse_version(text: str) -> tuple[int, int, int]:
    """Parse ``MAJOR.MINOR[.PATCH]`` (pre-release and build suffixes ignored).

    Raises:
        ValueError: ``text`` is not such a version.
    """
    match = _SEMVER.match(str(text).strip())
    if not match:
        raise ValueError(f"not a semantic version: {text!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def declared_contract_version(plugin: type[Any]) -> str | None:
    """Return the contract version a plugin class declares, or ``None`` for a legacy one."""
    declared = getattr(plugin, "contract_version", None)
    if declared is None:
        version_fn = getattr(plugin, "version", None)
        declared = version_fn() if callable(version_fn) else None
    return None if declared is None else str(declared)


@dataclass(frozen=True, slots=True)
class Compatibility:
    """The outcome of :func:`check_compatibility` for an accepted plugin."""

    status: Literal["compatible", "legacy"]
    declared: str | None
    contract: Contract

    @property
    def warning(self) -> str | None:
        """What to tell the user about a legacy plugin; ``None`` when it declares a version."""
        if self.status != "legacy":
            return None
        current = self.contract.current
        return (
            f"declares no contract_version; assuming {self.contract.kind} {current}. "
            f"Set contract_version = {current!r} on the class."
        )


def check_compatibility(plugin: type[Any], contract: Contract, *, name: str = "") -> Compatibility:
    """Check that ``plugin`` implements a version of ``contract`` this host can run.

    A plugin without a declared version is legacy: accepted, with status ``"legacy"`` and
    a :attr:`Compatibility.warning` for the caller to show.

    Raises:
        IncompatibleContract: another major, below the minimum, or not a version at all;
            the message names the plugin, its version and the host's range.
    """
    label = name or f"{plugin.__module__}:{plugin.__qualname__}"
    declared = declared_contract_version(plugin)
    if declared is None:
        return Compatibility("legacy", None, contract)
    context: dict[str, Any] = {
        "plugin": label,
        "declared": declared,
        "supported": contract.supported,
    }
    try:
        version = parse_version(declared)
    except ValueError:
        raise IncompatibleContract(
            f"Plugin {label!r} declares contract_version {declared!r}, which is not a "
            f"semantic version; this host runs {contract.kind} {contract.supported}.",
            **context,
        ) from None
    if version[0] != parse_version(contract.current)[0] or version < parse_version(
        contract.minimum
    ):
        raise IncompatibleContract(
            f"Plugin {label!r} implements {contract.kind} contract {declared}; this host "
            f"runs {contract.kind} {contract.supported}. Install a plugin release built "
            f"for that range.",
            **context,
        )
    return Compatibility("compatible", declared, contract)
