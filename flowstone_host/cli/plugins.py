"""``flowstone-host plugins``: every installed plugin, its versions and compatibility.

Each entry point is imported in a throwaway probe process (:mod:`..loading.probe`), which
reports the class's declared ``contract_version``; nothing is imported into this process,
so a plugin that hangs or crashes at import is listed as such instead of taking the
command down. Probes run a few at a time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..contracts.versions import CONTRACTS, check_compatibility
from ..errors import FlowStoneError
from ..loading import entry_points
from ..loading.limits import Limits
from ..loading.probe import probe_import
from ..manifest.host_config import HostConfig
from .common import Subparsers, add_command, host_config

__all__ = ["list_plugins", "register"]


def list_plugins(host: HostConfig) -> Iterator[str]:
    """Yield the lines of the listing: a header per namespace, one line per entry point."""
    found = [(c, info) for c in CONTRACTS.values() for info in entry_points.discover(c.namespace)]
    limits = Limits(memory_mb=host.sandbox.memory_mb, cpu_s=host.sandbox.cpu_s)
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(
            pool.map(
                lambda item: _verdict(item[0], item[1], host.sandbox.import_timeout_s, limits),
                found,
            )
        )
    namespace = None
    for (contract, info), verdict in zip(found, verdicts, strict=True):
        if contract.namespace != namespace:
            namespace = contract.namespace
            yield f"{namespace} ({contract.kind}, host contract {contract.supported}):"
        dist = f"{info.distribution or '?'} {info.version or '?'}"
        yield f"  {info.name:<28} {dist:<28} {verdict}"
    if not found:
        yield "No plugins installed in the flowstone.* namespaces."


def _verdict(
    contract: Any, info: entry_points.EntryPointInfo, timeout: float, limits: Limits
) -> str:
    try:
        result = probe_import(info.target, timeout_s=timeout, limits=limits)
    except OSError as exc:
        return f"not checked: could not start a probe ({exc.strerror})"
    if not result.ok:
        return f"NOT LOADABLE: {result.reason}"
    wrong = _wrong_class(contract, info, result.declared)
    if wrong:
        return f"WRONG CLASS: {wrong}"
    declared = result.declared.get("contract_version")
    stand_in = type("Probed", (), {"contract_version": declared})
    try:
        status = check_compatibility(stand_in, contract, name=info.name)
    except FlowStoneError as exc:
        return f"contract {declared}: INCOMPATIBLE ({exc.message})"
    version = result.declared.get("plugin_version")
    plugin = f"plugin {version}, " if isinstance(version, str) else ""
    if status.status == "legacy":
        return f"{plugin}contract not declared: legacy, accepted with a warning"
    verdict = f"{plugin}contract {declared}: compatible"
    if result.declared.get("config_schema_problem"):
        verdict += "; refused with isolation: process (its config_schema cannot be checked there)"
    return verdict


def _wrong_class(contract: Any, info: entry_points.EntryPointInfo, declared: Any) -> str | None:
    """Why the probed class cannot serve as ``contract``'s kind, or ``None``."""
    from ..loading.checks import check_probed_class

    try:
        check_probed_class(contract, info, {**declared, "config_schema_problem": None})
    except FlowStoneError as exc:
        return exc.message
    return None


def register(sub: Subparsers) -> None:
    add_command(
        sub,
        "plugins",
        _plugins,
        help="list installed plugins per namespace, with versions and compatibility",
        description=(
            "List every entry point in the flowstone.* namespaces with its distribution,\n"
            "version, contract version and whether this host can run it. Each plugin is\n"
            "imported in a throwaway probe process, never in this one."
        ),
    )


def _plugins(args: argparse.Namespace) -> int:
    from ..errors import FlowStoneError

    try:
        host = host_config(args)
    except FlowStoneError as exc:
        print(f"flowstone-host plugins: error: {exc.message}", file=sys.stderr)
        return 2
    for line in list_plugins(host):
        print(line)
    return 0
