"""A plugin's child process: a fresh interpreter in its own process group, with a private folder.

The child is ``sys.executable -I`` started with a scrubbed environment, ``stdin`` from
``/dev/null``, ``stdout``/``stderr`` piped into host log lines, and one end of a Unix
socketpair as its protocol channel (never stdin/stdout). It is a fresh interpreter
(fork-and-exec through :mod:`subprocess`, the same guarantee as multiprocessing's
``spawn``: nothing of the host's threads or state is inherited). Its bootstrap reads one
JSON start frame with the host's ``sys.path`` (so it finds exactly the host's packages
without relying on the environment), then calls the entry function the host named with
the channel's file descriptor and that frame.

The child leads its own process group, and when the host may create cgroups it also runs
in a cgroup of its own (see :mod:`.containment`), which a grandchild cannot leave with
``setsid``. It stays in the host's session: with the scheduler's autogroups (on by default
in most distributions) a session of its own is a scheduling group of its own, and on a busy
machine each wake-up of the child then waits for its group's turn, milliseconds at a time
(the isolated ``exists()`` p99 was 30-40x its floor that way, 1-5x without). Stopping it
is a polite ``SIGTERM`` to all it holds, a bounded wait, then ``SIGKILL``, each step logged.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from ...processes import pid_alive
from ..limits import Limits
from .channel import DEFAULT_MAX_FRAME, Channel
from .containment import Containment, contain, default_containment, host_cgroup, sweep_cgroups
from .output import OutputPump

__all__ = ["BASE_ENVIRONMENT", "ChildProcess", "child_environment", "kill_all", "sweep_orphans"]

log = logging.getLogger(__name__)

#: What a child always gets besides the passed-through variables. HOME and TMPDIR are set
#: to its private folder; PATH is the host's only when passed through.
BASE_ENVIRONMENT: Mapping[str, str] = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LC_CTYPE": "C.UTF-8",
}

# Standard library only: it runs before sys.path is set. Reads one length-prefixed JSON
# frame from the channel and calls init["entry"] ("module:function") with (fd, init).
# A thread blocks on the host's lifeline pipe: at its end of file the host is gone (even
# after kill -9), and the child exits instead of living on as an orphan. In a cgroup of
# its own (argv[3] is the folder of the host's cgroup), it kills the whole cgroup on its
# way out: what it started goes too, setsid or not. The host's death also closes the
# channel, and the main thread may exit first: it kills the cgroup too when the lifeline
# has ended.
_BOOTSTRAP = """\
import importlib, json, os, sys, threading
fd = int(sys.argv[1])
os.set_inheritable(fd, False)
lifeline = int(sys.argv[2])
def kill_cgroup(base):
    with open("/proc/self/cgroup") as lines:
        own = [line[3:].strip() for line in lines if line.startswith("0::")][0]
    name = own.rpartition("/")[2]
    if base and name.startswith("flowstone-h"):
        with open(os.path.join(base, name, "cgroup.kill"), "w") as kill:
            kill.write("1")
def watch():
    try:
        os.read(lifeline, 1)
        kill_cgroup(sys.argv[3])
    finally:
        os._exit(70)
threading.Thread(target=watch, daemon=True, name="flowstone-lifeline").start()
def read(n):
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            sys.exit(70)
        data += chunk
    return data
init = json.loads(read(int.from_bytes(read(4), "big")))
sys.path[:] = init["sys_path"]
module, _, function = init["entry"].partition(":")
try:
    getattr(importlib.import_module(module), function)(fd, init)
finally:  # the channel closed: if because the host died, the lifeline thread may lose
    import select  # the race to this exit, so kill the cgroup here too
    if select.select([lifeline], [], [], 0.02)[0]:
        kill_cgroup(sys.argv[3])
"""


def child_environment(variables: Mapping[str, str], workdir: str) -> dict[str, str]:
    """Return the environment of a child: the declared variables and the minimum.

    Args:
        variables: The variables the declaration gives the plugin.
        workdir: The child's private folder, its ``HOME`` and ``TMPDIR``.
    """
    env = dict(BASE_ENVIRONMENT)
    env.update({"HOME": workdir, "TMPDIR": workdir})
    env.update(variables)
    return env


#: Every child not yet released: plugins and probes, each leading its own process group.
_CHILDREN: weakref.WeakSet[ChildProcess] = weakref.WeakSet()


_LIFELINE: list[int] = []
_LIFELINE_LOCK = threading.Lock()
_OWNED = re.compile(r"^flowstone-.*-h(?P<pid>[0-9]+)-[^-]*$")


def _lifeline() -> int:
    """Return the read end of this process's lifeline pipe, made once.

    The write end stays only here (not inheritable): when this process dies, however,
    every child reading the pipe sees its end of file and exits.
    """
    with _LIFELINE_LOCK:
        if not _LIFELINE:
            read_end, write_end = os.pipe()
            _LIFELINE.extend((read_end, write_end))
        return _LIFELINE[0]


def sweep_orphans(folder: str | None = None) -> list[str]:
    """Remove the work folders that children of dead hosts left in the temporary folder,
    and kill and remove the cgroups they left (:func:`.containment.sweep_cgroups`).

    Returns:
        The folders removed.
    """
    sweep_cgroups()
    root = folder or tempfile.gettempdir()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            match = _OWNED.match(entry.name)
            if match is None or not entry.is_dir(follow_symlinks=False):
                continue
            if int(match["pid"]) != os.getpid() and not pid_alive(int(match["pid"])):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.path)
    if removed:
        log.info("Removed %d work folder(s) of dead hosts from %s", len(removed), root)
    return removed


@atexit.register  # after the supervisors' polite stops: whatever is left, still starting
def kill_all() -> None:
    """SIGKILL every child's process group now and remove its folder, without waiting: for
    a host exiting at once.

    Children lead their own process groups, so nothing else stops them when the host is gone.
    """
    for child in list(_CHILDREN):
        child._signal_group(signal.SIGKILL)
        child.containment.release(0)  # one try; a next host's start sweeps what is left
        shutil.rmtree(child.workdir, ignore_errors=True)


def _pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits, or ``None`` if the system
    will not give one (old kernel, seccomp, no descriptors left): then exits are polled."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _host_sys_path() -> list[str]:
    return [os.path.abspath(entry) if entry else os.getcwd() for entry in sys.path]


class ChildProcess:
    """A started child; see the module docstring for what it gets.

    Build one with :meth:`start`. ``channel`` is the host's end of the protocol socket.
    """

    def __init__(
        self,
        name: str,
        proc: subprocess.Popen[bytes],
        channel: Channel,
        workdir: str,
        pidfd: int | None,
        quiet: bool = False,
        containment: Containment | None = None,
    ) -> None:
        self.name = name
        self.proc = proc
        self.pid = proc.pid
        self.containment = containment or Containment(proc.pid)
        self.channel = channel
        self.workdir = workdir
        self._pidfd = pidfd
        assert proc.stdout is not None and proc.stderr is not None
        streams = {"stdout": proc.stdout, "stderr": proc.stderr}
        self.output = OutputPump(name, streams, quiet=quiet)

    @classmethod
    def start(
        cls,
        name: str,
        entry: str,
        *,
        limits: Limits,
        env: Mapping[str, str] | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        faulthandler: bool = False,
        quiet: bool = False,
        init: Mapping[str, Any] | None = None,
        containment: str | None = None,
    ) -> ChildProcess:
        """Spawn a child that runs ``entry`` (``"module:function"``) and send its start frame.

        Args:
            name: The plugin's name, for logs and the folder's prefix.
            entry: The function the child calls with ``(fd, init)``.
            limits: rlimits the child applies before importing plugin code.
            env: Environment variables for the child, beyond the minimum.
            max_frame: The channel's frame size cap in bytes.
            faulthandler: Print a traceback on stderr if the child dies of a signal.
            quiet: Log the child's output at DEBUG only (its caller reports the tail).
            init: Extra JSON-safe fields for the start frame.
            containment: ``auto`` (a cgroup when possible) or ``process_group``; default
                :func:`~.containment.default_containment`.

        Raises:
            OSError: the process could not be started.
            ValueError: ``FLOWSTONE_ISOLATION_CONTAINMENT`` holds an unknown choice.
        """
        choice = containment or default_containment()
        cgroups = host_cgroup() if choice == "auto" else None
        base = str(cgroups or "")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        workdir = tempfile.mkdtemp(prefix=f"flowstone-{safe}-h{os.getpid()}-")
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-I", "-u", *(["-X", "faulthandler"] if faulthandler else [])]
        try:
            proc = subprocess.Popen(
                [*argv, "-c", _BOOTSTRAP, str(child_sock.fileno()), str(_lifeline()), base],
                env=child_environment(env or {}, workdir),
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(child_sock.fileno(), _lifeline()),
                process_group=0,  # its own group, in the host's session (see above)
            )
        except BaseException:
            host_sock.close()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        finally:
            child_sock.close()
        # Before the start frame: the child runs no plugin code, and starts nothing, until then.
        held = contain(name, proc.pid, choice, cgroups)
        pidfd = _pidfd(proc.pid)
        channel = Channel(host_sock, max_frame=max_frame, watch_fd=pidfd)
        child = cls(name, proc, channel, workdir, pidfd, quiet, held)
        _CHILDREN.add(child)
        log.debug("Started plugin %s as pid %d in %s (%s)", name, proc.pid, workdir, held.kind)
        start = {
            "sys_path": _host_sys_path(),
            "entry": entry,
            "name": name,
            "limits": limits.to_wire(),
            "max_frame": max_frame,
            **(init or {}),
        }
        try:
            child.channel.send(json.dumps(start).encode(), None)
        except BaseException:
            child.kill()
            raise
        return child

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: killed by that signal), else ``None``."""
        return self.proc.returncode

    def exit_description(self) -> str:
        """Describe how the child ended: ``exited with code 3``, ``killed by SIGSEGV``."""
        code = self.proc.returncode
        if code is None:
            return "still running"
        if code < 0:
            return f"killed by {_signal_name(-code)}"
        return f"exited with code {code}"

    def wait_exit(self, timeout: float | None) -> bool:
        """Wait until the child exits, without reaping it; return whether it did."""
        if self._pidfd is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        poller = select.poll()
        poller.register(self._pidfd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))

    def stop(self, grace_s: float) -> None:
        """Stop politely: SIGTERM to the group, wait ``grace_s``, then SIGKILL the group.

        The group is killed even when the child exited in time, so grandchildren that
        ignored SIGTERM go too. Idempotent.
        """
        if self.proc.returncode is None and not self.wait_exit(0):
            log.info(
                "Stopping plugin %s (pid %d): SIGTERM to its %s",
                self.name,
                self.pid,
                _HOLDER[self.containment.kind],
            )
            self._signal_group(signal.SIGTERM)
            if self.wait_exit(grace_s):
                log.info("Plugin %s (pid %d) exited after SIGTERM", self.name, self.pid)
            else:
                log.warning(
                    "Plugin %s (pid %d) still running %.1f s after SIGTERM",
                    self.name,
                    self.pid,
                    grace_s,
                )
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group, reap the child and release its folder. Idempotent."""
        if self.proc.returncode is None:
            if not self.wait_exit(0):
                log.info(
                    "Killing the %s of plugin %s (pid %d)",
                    _HOLDER[self.containment.kind],
                    self.name,
                    self.pid,
                )
            self._signal_group(signal.SIGKILL)  # also any grandchild left in the group
            self.proc.wait()
            log.info("Plugin %s (pid %d) %s", self.name, self.pid, self.exit_description())
        self._release()

    def _signal_group(self, signum: int) -> None:
        # The leader is not reaped yet (a zombie at worst), so its pid still names the group.
        self.containment.signal(signum)

    def _release(self) -> None:
        _CHILDREN.discard(self)
        self.containment.release()  # whatever is left in a cgroup, however it got out
        self.channel.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self.output.join(1.0)
        shutil.rmtree(self.workdir, ignore_errors=True)


_HOLDER = {"cgroup": "cgroup", "process_group": "process group"}


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
