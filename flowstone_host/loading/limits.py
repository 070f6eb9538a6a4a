"""Resource limits (rlimits) applied inside a plugin's child process before it imports."""

from __future__ import annotations

import resource
from dataclasses import dataclass

__all__ = ["Limits"]

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """The rlimits of a child process; ``None`` leaves that limit as the host has it.

    Attributes:
        memory_mb: Address space (``RLIMIT_AS``) in MiB. Allocations beyond it raise
            ``MemoryError`` in the child.
        cpu_s: CPU seconds (``RLIMIT_CPU``) over the child's whole life; past it the kernel
            sends ``SIGXCPU``, one second later ``SIGKILL``. Suits probes more than
            long-lived plugins.
        open_files: Open file descriptors (``RLIMIT_NOFILE``).
    """

    memory_mb: int | None = None
    cpu_s: int | None = None
    open_files: int | None = None

    def to_wire(self) -> dict[str, int | None]:
        """Return the limits as plain data for the child's start message."""
        return {"memory_mb": self.memory_mb, "cpu_s": self.cpu_s, "open_files": self.open_files}

    @classmethod
    def from_wire(cls, data: dict[str, int | None]) -> Limits:
        """Rebuild limits from :meth:`to_wire` output."""
        return cls(data.get("memory_mb"), data.get("cpu_s"), data.get("open_files"))

    def apply(self) -> None:
        """Set these limits on the calling process (the child, never the host).

        Raises:
            ValueError: a limit is above the hard limit the process already has.
        """
        if self.memory_mb is not None:
            _lower(resource.RLIMIT_AS, self.memory_mb * _MIB)
        if self.cpu_s is not None:
            # The soft limit sends SIGXCPU; the hard one, a second later, SIGKILL.
            _lower(resource.RLIMIT_CPU, self.cpu_s, hard_extra=1)
        if self.open_files is not None:
            _lower(resource.RLIMIT_NOFILE, self.open_files)


def _lower(which: int, soft: int, *, hard_extra: int = 0) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft + hard_extra
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
    resource.setrlimit(which, (min(soft, hard), hard))
