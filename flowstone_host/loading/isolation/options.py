"""How an isolated plugin runs: environment, limits, timeouts, restarts, frame cap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..limits import Limits
from .channel import DEFAULT_MAX_FRAME
from .restart import RestartPolicy

__all__ = ["IsolationOptions"]


@dataclass(frozen=True, slots=True)
class IsolationOptions:
    """Everything about running one plugin out of process except what it is.

    The host builds one from ``config/host.yaml`` (sandbox limits and defaults) and the
    declaration (``timeout_s``, passed-through variables).

    Attributes:
        env: The child's environment variables, as the declaration's ``spec.env`` gives
            them (``${VAR}`` there passes a host variable through); it sees no other
            (besides ``PATH``, ``LC_CTYPE``, and ``HOME``/``TMPDIR`` set to its private
            folder; see :data:`~.process.BASE_ENVIRONMENT`).
        timeout_s: Per-call limit. A call past it fails with a retryable ``Timeout`` and
            the child is killed and restarted.
        start_timeout_s: Limit for starting the child, importing and building the plugin.
        stop_grace_s: How long a stopping child gets between SIGTERM and SIGKILL.
        limits: rlimits of the child (CPU seconds count over its whole life).
        restart: Backoff and circuit breaker.
        max_frame: The protocol's frame size cap in bytes, both ways.
        containment: What holds the child: ``auto`` (a cgroup of its own when the host may
            create one, else its process group) or ``process_group``; ``None`` reads
            ``FLOWSTONE_ISOLATION_CONTAINMENT`` (see :mod:`.containment`).
    """

    env: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0
    start_timeout_s: float = 30.0
    stop_grace_s: float = 5.0
    limits: Limits = field(default_factory=lambda: Limits(memory_mb=4096, open_files=1024))
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    max_frame: int = DEFAULT_MAX_FRAME
    containment: str | None = None
