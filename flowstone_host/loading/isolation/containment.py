"""What holds an isolated child and everything it starts, so that stopping it reaches them all.

Every child leads its own process group, and stopping it signals the group.
A grandchild that calls ``setsid`` leaves that group, though, and would outlive its plugin.
So when the host may create cgroups, each child also gets a cgroup v2 of its own, made
under the host's cgroup (``/proc/self/cgroup``) wherever the cgroup2 file system is mounted:

- ``cgroup``: the child is moved into its cgroup before it runs any plugin code (it waits
  for its start frame first), so whatever it starts stays inside, ``setsid`` or not.
  Signals go to every process listed in ``cgroup.procs``; the final kill writes
  ``cgroup.kill`` (Linux 5.14) or, on older kernels, SIGKILLs the listed processes until
  none is left; then the cgroup is removed. This needs write access to the host's cgroup:
  root, a systemd unit with ``Delegate=yes``, or a delegated container.
- ``process_group``: the fallback, when no writable cgroup v2 is found or one could not be
  made (the reason is logged once). A grandchild that calls ``setsid`` escapes.

``FLOWSTONE_ISOLATION_CONTAINMENT=process_group`` forces the fallback (the default,
``auto``, takes a cgroup when it can); ``/status`` names the containment of every isolated
declaration. A child whose host died (``kill -9``) kills its own cgroup as it exits, so
what it started goes with it; the next host's start removes the empty cgroups
(:func:`sweep_cgroups`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from ...processes import pid_alive

__all__ = [
    "CGROUP",
    "PROCESS_GROUP",
    "Containment",
    "ContainmentKind",
    "contain",
    "default_containment",
    "host_cgroup",
    "sweep_cgroups",
]

log = logging.getLogger(__name__)

ContainmentKind = Literal["cgroup", "process_group"]
CGROUP: ContainmentKind = "cgroup"
PROCESS_GROUP: ContainmentKind = "process_group"

_VARIABLE = "FLOWSTONE_ISOLATION_CONTAINMENT"
_CHOICES = ("auto", PROCESS_GROUP)
_PREFIX = "flowstone-h"
_OWNED = re.compile(rf"^{_PREFIX}(?P<pid>[0-9]+)-")
_COUNTER = itertools.count(1)
_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()


def default_containment(environ: Mapping[str, str] | None = None) -> str:
    """``auto`` (a cgroup when possible), or what ``FLOWSTONE_ISOLATION_CONTAINMENT`` says.

    Raises:
        ValueError: the variable holds something else.
    """
    value = (environ if environ is not None else os.environ).get(_VARIABLE, "auto") or "auto"
    if value not in _CHOICES:
        raise ValueError(f"{_VARIABLE}={value!r}: expected one of {', '.join(_CHOICES)}")
    return value


def host_cgroup(proc: str = "/proc/self") -> Path | None:
    """Return the folder of this process's cgroup v2, or ``None`` if there is none.

    Reads the ``0::`` line of ``cgroup`` and the cgroup2 mount of ``mountinfo`` (the
    unified hierarchy, mounted alone or beside v1 controllers).
    """
    try:
        lines = Path(proc, "cgroup").read_text().splitlines()
        mounts = Path(proc, "mountinfo").read_text().splitlines()
    except OSError:
        return None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None or own.endswith("(deleted)"):
        return None
    for mount in mounts:
        fields, _, tail = mount.partition(" - ")
        parts = fields.split()
        if tail.split()[:1] != ["cgroup2"] or len(parts) < 5:
            continue
        root, point = parts[3], parts[4]
        if own == root or own.startswith(root.rstrip("/") + "/"):
            return Path(point, own[len(root.rstrip("/")) :].lstrip("/"))
    return None


class Containment:
    """The process group of a child; see :class:`CgroupContainment` for the cgroup."""

    kind: ContainmentKind = PROCESS_GROUP

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def signal(self, signum: int) -> None:
        """Send ``signum`` to every process held (the group: the leader's pid names it)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def release(self, timeout_s: float = 2.0) -> None:
        """Kill whatever is left and let go of what holds it, waiting at most ``timeout_s``
        for it to go. Idempotent.

        Call it once the child is reaped: the group is not signalled here (its pid may
        name another process by then), only a cgroup is emptied and removed.
        """


class CgroupContainment(Containment):
    """The child's own cgroup, besides its process group."""

    kind: ContainmentKind = CGROUP

    def __init__(self, pid: int, path: Path) -> None:
        super().__init__(pid)
        self.path = path

    def signal(self, signum: int) -> None:
        super().signal(signum)
        _signal_cgroup(self.path, signum)

    def release(self, timeout_s: float = 2.0) -> None:
        _empty_and_remove(self.path, timeout_s)


def contain(name: str, pid: int, choice: str = "auto", base: Path | None = None) -> Containment:
    """Hold the just-started child ``pid`` (which must not have run plugin code yet).

    Args:
        name: The child's name, for the cgroup's name and the logs.
        pid: The child's pid; it leads its own process group.
        choice: ``auto`` (a cgroup when possible) or ``process_group``.
        base: The host's cgroup folder, if already looked up (default: :func:`host_cgroup`).
    """
    base = (base or host_cgroup()) if choice == "auto" else None
    if base is None:
        if choice == "auto":
            _warn_once("no cgroup v2 mount holds this host's cgroup")
        return Containment(pid)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60]
    path = base / f"{_PREFIX}{os.getpid()}-{next(_COUNTER)}-{safe}"
    try:
        path.mkdir()
    except OSError as exc:
        _warn_once(f"cannot create a cgroup under {base} ({exc.strerror})")
        return Containment(pid)
    if not _write(path / "cgroup.procs", str(pid)):
        with contextlib.suppress(OSError):
            path.rmdir()
        _warn_once(f"cannot move a child into a cgroup under {base}")
        return Containment(pid)
    return CgroupContainment(pid, path)


def sweep_cgroups(base: Path | None = None) -> list[Path]:
    """Kill what is left in the cgroups of dead hosts under ``base`` (default: this host's
    cgroup), and remove them.

    Returns:
        The cgroups removed.
    """
    base = base or host_cgroup()
    removed: list[Path] = []
    if base is None:
        return removed
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            match = _OWNED.match(entry.name)
            if match is None or not entry.is_dir(follow_symlinks=False):
                continue
            owner = int(match["pid"])
            if owner == os.getpid() or pid_alive(owner):
                continue
            if _empty_and_remove(Path(entry.path), timeout_s=1.0):
                removed.append(Path(entry.path))
    if removed:
        log.info("Removed %d cgroup(s) of dead hosts from %s", len(removed), base)
    return removed


def _signal_cgroup(path: Path, signum: int) -> None:
    """Send ``signum`` to every process in the cgroup at ``path``."""
    if signum == signal.SIGKILL and _write(path / "cgroup.kill", "1"):
        return
    for pid in _members(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _empty_and_remove(path: Path, timeout_s: float) -> bool:
    """Kill every process in the cgroup at ``path`` and remove it; return whether it is gone.

    ``rmdir`` is refused (``EBUSY``) while a live process is inside; killed ones leave in
    a moment, zombies do not count.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        _signal_cgroup(path, signal.SIGKILL)
        try:
            path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() < deadline:
                time.sleep(0.01)
                continue
            log.warning("Could not remove cgroup %s: processes are still in it", path)
            return False
        return True


def _members(path: Path) -> list[int]:
    try:
        return [int(pid) for pid in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _write(path: Path, text: str) -> bool:
    try:
        with open(path, "w") as file:
            file.write(text)
    except OSError:
        return False
    return True


def _warn_once(reason: str) -> None:
    with _WARNED_LOCK:
        if reason in _WARNED:
            return
        _WARNED.add(reason)
    log.warning(
        "Isolated plugins run in their own process group, not a cgroup: %s. A process a "
        "plugin starts that calls setsid() can outlive the plugin.",
        reason,
    )
