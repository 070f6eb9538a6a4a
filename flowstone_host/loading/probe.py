"""The import probe: import a plugin in a throwaway child before the host ever does.

A plugin that hangs, calls ``sys.exit`` or ``os._exit``, segfaults or eats memory at
import is reported with what happened and never reaches the host::

    result = probe_import("vendor.plugin:Manager", timeout_s=10, limits=Limits(memory_mb=512))
    if not result.ok:
        raise result.to_error()

The child is a fresh interpreter (see :mod:`.isolation.process`) that applies the rlimits,
imports the target, reports ``ok`` or the exception, and exits. Verdicts can be cached per
``(distribution, version, target)`` in a :class:`ProbeCache` the host keeps across reloads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..contracts.versions import CONTRACTS
from ..errors import PluginLoadError
from ..telemetry import execute
from .isolation.channel import ChannelClosed, ChannelTimeout
from .isolation.child import child_channel
from .isolation.codec import decode, encode, plain_or_none
from .isolation.process import ChildProcess
from .isolation.target import Target, TargetNotFound, describe_target, load_target
from .limits import Limits
from .schema_wire import to_wire

__all__ = ["DEFAULT_PROBE_LIMITS", "ProbeCache", "ProbeResult", "probe_import"]

#: Limits of a probe when the host config sets none.
DEFAULT_PROBE_LIMITS = Limits(memory_mb=1024, cpu_s=30, open_files=256)

Outcome = Literal[
    "ok", "import_error", "not_found", "exited", "signal", "timeout", "memory_limit", "cpu_limit"
]

_OUTCOMES = frozenset(Outcome.__args__)  # type: ignore[attr-defined]
_REPORT_FIELDS = (
    "outcome",
    "reason",
    "exit_code",
    "signal",
    "error_type",
    "error_message",
    "loaded",
    "declared",
)
_DECLARED = ("contract_version", "plugin_version")
_MEMORY_HINTS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What importing a plugin in a probe child did.

    Attributes:
        target: The probed ``module:attr`` or ``namespace/name``.
        outcome: ``ok``; ``import_error`` (an exception); ``not_found`` (no such entry
            point); ``exited`` (``sys.exit``/``os._exit``: see ``exit_code``); ``signal``
            (see ``signal``); ``timeout``; ``memory_limit``; ``cpu_limit``.
        reason: One sentence for people.
        duration_s: Wall time of the probe.
        exit_code: The child's exit code when it exited on its own.
        signal: The signal's name (``SIGSEGV``) when one killed it.
        error_type: The exception's qualified class name, for ``import_error``.
        error_message: The exception's message, for ``import_error``.
        loaded: ``module:qualname`` of the object the target names, when ``ok``.
        declared: Its ``contract_version``, ``plugin_version``, ``config_schema`` (as
            plain data, see :mod:`.schema_wire`; ``config_schema_problem`` says why it
            could not travel) and ``contracts``: for each contract ABC the object
            subclasses, the abstract methods it leaves unimplemented. The host checks
            versions, base class and config with them before building anything.
        output_tail: The child's last stdout/stderr lines (a segfault's traceback).
    """

    target: str
    outcome: Outcome
    reason: str
    duration_s: float
    exit_code: int | None = None
    signal: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    loaded: str | None = None
    declared: Mapping[str, Any] = field(default_factory=dict)
    output_tail: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the target imported cleanly."""
        return self.outcome == "ok"

    def to_error(self, **context: Any) -> PluginLoadError:
        """Return the load error the host reports for a failed probe."""
        return PluginLoadError(
            f"Importing plugin {self.target!r} in a probe process failed: {self.reason}. "
            f"It was not imported into the host; fix or remove the plugin.",
            details={
                "probe": self.outcome,
                "exit_code": self.exit_code,
                "signal": self.signal,
                "error_type": self.error_type,
                "output_tail": list(self.output_tail),
            },
            **{"target": self.target, **context},
        )


class ProbeCache:
    """Probe verdicts by ``(distribution, version, target)``; thread-safe.

    The host keeps one for its lifetime: a reload does not probe a distribution version
    again. Another version of the distribution is probed anew.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[tuple[str, str, str], ProbeResult] = {}

    def get(self, distribution: str, version: str, target: str) -> ProbeResult | None:
        """Return the cached verdict, or ``None``."""
        with self._lock:
            return self._verdicts.get((distribution, version, target))

    def put(self, distribution: str, version: str, result: ProbeResult) -> None:
        """Remember ``result`` for that distribution version."""
        with self._lock:
            self._verdicts[(distribution, version, result.target)] = result

    def forget_timeouts(self) -> None:
        """Drop the verdicts of probes that timed out: a busy machine can cause one."""
        with self._lock:
            self._verdicts = {k: v for k, v in self._verdicts.items() if v.outcome != "timeout"}

    def forget(self, distribution: str) -> None:
        """Drop every verdict about ``distribution`` (to probe it again)."""
        with self._lock:
            self._verdicts = {k: v for k, v in self._verdicts.items() if k[0] != distribution}


def probe_import(
    target: Target,
    *,
    timeout_s: float = 10.0,
    limits: Limits = DEFAULT_PROBE_LIMITS,
    distribution: tuple[str, str] | None = None,
    cache: ProbeCache | None = None,
) -> ProbeResult:
    """Import ``target`` in a throwaway child under limits and report what happened.

    Never imports the target into this process, and never raises for anything the
    plugin does.

    Args:
        target: An entry point's ``"module:attr"`` value, or ``(namespace, name)``.
        timeout_s: Wall-clock limit for the whole probe; past it the child's process
            group is killed and the outcome is ``timeout``.
        limits: rlimits applied in the child before the import.
        distribution: ``(name, version)`` of the distribution providing the target;
            with ``cache``, a known verdict is returned without probing.
        cache: Where verdicts are kept.

    Returns:
        The verdict.

    Raises:
        OSError: the child process could not be started at all.
    """
    label = describe_target(target)
    if cache is not None and distribution is not None:
        cached = cache.get(*distribution, label)
        if cached is not None:
            return cached
    result = _run_probe(target, label, timeout_s, limits)
    execute(
        ("flowstone", "plugin", "probe"),
        {"duration": int(result.duration_s * 1e9)},
        {"target": label, "outcome": result.outcome, "reason": result.reason},
    )
    if cache is not None and distribution is not None:
        cache.put(*distribution, result)
    return result


def _run_probe(target: Target, label: str, timeout_s: float, limits: Limits) -> ProbeResult:
    started = time.monotonic()
    deadline = started + timeout_s
    child = ChildProcess.start(
        f"probe:{label}",
        f"{__name__}:run_in_child",
        limits=limits,
        faulthandler=True,
        quiet=True,  # the output's tail goes into the result instead
        init={"target": target},
    )
    try:
        report: Mapping[str, Any] = decode(child.channel.recv(deadline))
    except ChannelTimeout:
        child.kill()
        report = _timed_out(timeout_s)
    except ChannelClosed:
        exited = child.wait_exit(max(0.0, deadline - time.monotonic()))
        child.kill()
        report = _classify_exit(child, limits) if exited else _timed_out(timeout_s)
    except Exception as exc:  # a garbled report: whatever decoding it raised
        child.kill()
        report = {"outcome": "import_error", "reason": f"sent a garbled report ({exc})"}
    except BaseException:
        child.kill()  # never leave a probe child (in its own process group) behind
        raise
    else:
        child.wait_exit(1.0)
        child.stop(1.0)
    return ProbeResult(
        target=label,
        duration_s=time.monotonic() - started,
        output_tail=tuple(child.output.tail()),
        **_checked(report),
    )


def _checked(report: Any) -> dict[str, Any]:
    """Keep only the fields a report may carry; the child is not trusted to send them."""
    if not isinstance(report, Mapping) or report.get("outcome") not in _OUTCOMES:
        return {"outcome": "import_error", "reason": f"sent a malformed report: {report!r:.200}"}
    return {k: report[k] for k in _REPORT_FIELDS if report.get(k) is not None}


def _timed_out(timeout_s: float) -> dict[str, Any]:
    return {"outcome": "timeout", "reason": f"still importing after {timeout_s:g} s; killed"}


def _classify_exit(child: ChildProcess, limits: Limits) -> dict[str, Any]:
    code = child.returncode or 0
    described = f"{child.exit_description()} while importing"
    if limits.memory_mb is not None and code != 0 and _mentions_memory(child.output.tail()):
        return {
            "outcome": "memory_limit",
            "reason": f"{described}: out of memory (limit {limits.memory_mb} MiB)",
            "exit_code": code if code > 0 else None,
        }
    if code < 0:
        name = child.exit_description().removeprefix("killed by ")
        if name == "SIGXCPU":
            return {
                "outcome": "cpu_limit",
                "signal": name,
                "reason": f"{described}: CPU limit of {limits.cpu_s} s reached",
            }
        return {"outcome": "signal", "signal": name, "reason": described}
    return {"outcome": "exited", "exit_code": code, "reason": described}


def _mentions_memory(lines: list[str]) -> bool:
    return any(hint in line for line in lines for hint in _MEMORY_HINTS)


def run_in_child(fd: int, init: Mapping[str, Any]) -> None:
    """The probe child's entry: apply limits, import the target, send one report."""
    channel = child_channel(fd, init)
    report = _import(init["target"], init["limits"]["memory_mb"])
    channel.send(encode(report))


def _import(target: Any, memory_mb: int | None) -> dict[str, Any]:
    # Reports are built inside the except blocks but sent after them, once the traceback
    # (and whatever the failed import allocated) has been released.
    try:
        loaded = load_target(target)
    except MemoryError:
        return {
            "outcome": "memory_limit",
            "error_type": "MemoryError",
            "reason": f"MemoryError while importing (memory limit {memory_mb} MiB)",
        }
    except TargetNotFound as exc:
        return {"outcome": "not_found", "reason": str(exc)}
    except Exception as exc:
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}".removeprefix("builtins.")
        return {
            "outcome": "import_error",
            "reason": f"{kind}: {exc}",
            "error_type": kind,
            "error_message": str(exc),
        }
    module = getattr(loaded, "__module__", "?")
    name = getattr(loaded, "__qualname__", type(loaded).__qualname__)
    declared = {k: plain_or_none(getattr(loaded, k, None)) for k in _DECLARED}
    declared.update(_schema(loaded), contracts=_contracts(loaded))
    return {
        "outcome": "ok",
        "reason": "imported",
        "loaded": f"{module}:{name}",
        "declared": declared,
    }


def _schema(loaded: Any) -> dict[str, Any]:
    """The class's ``config_schema`` as plain data, or why it cannot leave this process."""
    try:
        schema, problems = to_wire(getattr(loaded, "config_schema", None))
    except Exception as exc:  # a schema whose mapping methods raise: the author's bug
        schema, problems = None, [f"reading config_schema raised {type(exc).__name__}"]
    return {"config_schema": schema, "config_schema_problem": "; ".join(problems) or None}


def _contracts(loaded: Any) -> dict[str, list[str]]:
    """``{kind: unimplemented abstract methods}`` for each contract ABC ``loaded`` subclasses."""
    if not isinstance(loaded, type):
        return {}
    try:
        missing = sorted(str(m) for m in getattr(loaded, "__abstractmethods__", ()))
        return {kind: missing for kind, c in CONTRACTS.items() if issubclass(loaded, c.abc)}
    except Exception:  # a metaclass whose subclass check raises: it implements nothing
        return {}
