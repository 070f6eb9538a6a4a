"""Guarded loading: one declaration in, a registry entry or a precise error out.

Every step that touches plugin code is guarded, so a broken plugin fails its own
declaration and nothing else: finding the entry point, the sandbox policy, the import
probe, the import itself (``SystemExit`` and ``KeyboardInterrupt`` included), the class
checks (base class, abstract methods, contract version and the declaration's range), the
constructor and ``Resource.setup``. The caller collects the errors into a load report.

An in-process constructor, ``setup()``, ``teardown()`` and ``close()`` run on a thread of
their own under ``sandbox.limits.setup_timeout_s``: one that does not return in time fails
its declaration (or is given up on, at teardown), is left behind on its thread and reported
(a log line, and :func:`abandoned_calls` for ``/status``); what it returns late is let go.
The same declaration's same step is not started again while an abandoned one still runs.
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..config import FieldPath, callable_keys, secret_keys, value_at
from ..contracts.plugin import Plugin
from ..contracts.resource import Resource
from ..contracts.versions import CONTRACTS, Contract
from ..errors import (
    FlowStoneError,
    NotFound,
    PluginLoadError,
    PluginRefused,
)
from ..kinds import kind_info
from ..manifest.host_config import HostConfig, Sandbox
from ..manifest.model import Declaration, thaw
from . import entry_points
from .checks import (
    check_contract_class,
    check_probed_class,
    compatible,
    label,
    metadata,
    stand_in,
)
from .construct import HostFacts, build_plugin
from .entry import Entry
from .entry_points import EntryPointInfo
from .limits import Limits
from .policy import refusal
from .probe import ProbeCache, ProbeResult, probe_import

__all__ = ["HOST_DISTRIBUTION", "PluginLoader", "abandoned_calls", "teardown_entry"]

log = logging.getLogger(__name__)

#: The host's own distribution: its plugins run host code already, so they are not probed.
HOST_DISTRIBUTION = "flowstone-host"

#: Probe verdicts hold for a distribution version, so one cache serves the whole process.
_PROBES = ProbeCache()

#: The distribution version each module imported into this process runs: the version
#: installed when it was first imported. Python keeps an imported module, so an upgrade
#: installed later runs in process only after a restart.
_RUNNING: dict[str, str] = {}


class PluginLoader:
    """Builds registry entries from validated declarations under one sandbox policy.

    Args:
        sandbox: The host config's distribution policy and limits.
        probe_cache: Probe verdicts kept across reloads (one per host).
        facts: What plugin constructors may ask for (state folder, callables policy).
    """

    def __init__(
        self,
        sandbox: Sandbox,
        probe_cache: ProbeCache | None = None,
        *,
        facts: HostFacts | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.facts = facts or HostFacts()
        self._probes = probe_cache or _PROBES
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Give up on the constructors and ``setup()`` calls being waited for, and start no
        more (the host is stopping); teardowns still run. Safe from a signal handler."""
        self._cancelled.set()

    @property
    def setup_timeout_s(self) -> float:
        """Seconds a constructor, ``setup()``, ``teardown()`` or ``close()`` may take."""
        return self.sandbox.setup_timeout_s

    def teardown(self, entry: Entry, timeout_s: float | None = None) -> bool:
        """:func:`teardown_entry` under this loader's ``setup_timeout_s`` (or the shorter
        ``timeout_s``); return whether it finished in time."""
        limit = self.setup_timeout_s if timeout_s is None else min(timeout_s, self.setup_timeout_s)
        return teardown_entry(entry, limit)

    @classmethod
    def for_host(cls, host: HostConfig) -> PluginLoader:
        """Return a loader under ``host``'s sandbox, state folder and callables policy."""
        return cls(host.sandbox, facts=HostFacts(str(host.state_dir), host.callables))

    def retry_timeouts(self) -> None:
        """Probe again, at the next load, the imports that timed out before."""
        self._probes.forget_timeouts()

    def plugin_class(self, kind: str, plugin: str, isolation: str) -> type[Any]:
        """Return what the host may read of a plugin class without running it.

        An in-process plugin's class is imported (after the policy check and, for a
        distribution not yet imported, the probe). A process-isolated plugin is never
        imported into the host: a stand-in carrying the ``contract_version``,
        ``plugin_version`` and plain-data ``config_schema`` the probe read is returned.

        Raises:
            NotFound: no such entry point; the message lists what is installed.
            PluginRefused: the sandbox policy refuses its distribution.
            PluginLoadError: the probe or the import failed.
        """
        return self.class_of(_find(CONTRACTS[kind], plugin), isolation)

    def class_of(self, info: EntryPointInfo, isolation: str) -> type[Any]:
        """Return the class of a found entry point; see :meth:`plugin_class`.

        Raises:
            PluginRefused: the sandbox policy refuses its distribution.
            PluginLoadError: the probe or the import failed.
        """
        plugin = info.name
        contract = _contract_of(info)
        self._check_policy(info)
        if isolation == "process":
            declared = self._run_probe(info).declared
            if contract is not None:
                check_probed_class(contract, info, declared)
            return stand_in(plugin, declared)
        if self._needs_probe(info):
            self._run_probe(info)
        module = info.target.partition(":")[0]
        fresh = module not in sys.modules
        try:
            loaded: type[Any] = entry_points.load_class(info.namespace, plugin)
        except FlowStoneError:
            raise
        except BaseException as exc:  # SystemExit at import, with probing off
            raise PluginLoadError(
                f"Importing plugin {plugin!r} ({info.target}) raised {type(exc).__name__}: {exc}"
            ) from exc
        if info.version and (fresh or module not in _RUNNING):
            _RUNNING[module] = info.version
        if contract is not None:
            check_contract_class(contract, info, loaded)
        return loaded

    @staticmethod
    def running_version(info: EntryPointInfo, isolation: str) -> str | None:
        """Return the distribution version whose code a plugin loaded now runs: the
        installed one in its own process, the first imported one in this process."""
        if isolation == "process":
            return info.version
        return _RUNNING.get(info.target.partition(":")[0], info.version)

    def load(self, declaration: Declaration, resources: Mapping[str, Any] | None = None) -> Entry:
        """Import, check, build and (for resources) set up the plugin ``declaration`` names.

        Args:
            declaration: A validated declaration.
            resources: ``{name: handle}`` of the resources it ``depends_on``, set up.

        Raises:
            FlowStoneError: ``NotFound`` (no such entry point), ``PluginRefused`` (policy),
                ``PluginLoadError`` (probe, import, class checks, constructor, setup) or
                ``IncompatibleContract``; the context names the declaration.
        """
        context: dict[str, Any] = {
            "kind": declaration.kind,
            "name": declaration.name,
            "plugin": declaration.plugin,
            **entry_points.provenance(declaration.namespace, declaration.plugin),
        }
        try:
            return self._load(declaration, resources or {})
        except FlowStoneError as exc:
            # The declaration names the culprit: an isolated child's error says "plugin"
            # for its import target, and that must not hide the entry-point name.
            exc.context = {**exc.context, **context}
            raise
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: the host carries on
            raise PluginLoadError(
                f"{label(declaration)} failed to load: {type(exc).__name__}: {exc}",
                **context,
            ) from exc

    def _load(self, declaration: Declaration, resources: Mapping[str, Any]) -> Entry:
        contract = CONTRACTS[declaration.kind]
        isolation = self.isolation(declaration)
        info = declaration.entry_point or _find(contract, declaration.plugin)
        plugin_class = self.class_of(info, isolation)  # base class and methods checked
        compatibility = compatible(plugin_class, contract, declaration)  # before any instance
        if compatibility.status == "legacy":
            log.warning("%s: %s", label(declaration), compatibility.warning)
        self._check_callables(declaration, plugin_class)
        running = self.running_version(info, isolation)  # /status flags an upgrade
        facts = dataclasses.replace(self.facts, resources=resources)
        if isolation == "process":
            instance, plugin_class = self._spawn(declaration, info)
        elif kind_info(declaration.kind).per_run:
            instance = _factory(plugin_class, declaration.kind, facts)  # one per run
        else:
            build = functools.partial(build_plugin, plugin_class, declaration.kind)
            instance = self._timed(
                declaration, "its constructor", build, (declaration.config, facts), _let_go
            )
        handle = None
        if isinstance(instance, Resource):
            setup = instance.setup
            try:
                handle = self._timed(
                    declaration,
                    "setup()",
                    setup,
                    (thaw(declaration.config),),
                    functools.partial(_let_go_handle, declaration, instance),
                )
            except _TimedOut:
                raise  # still setting up on its thread: let go once it returns
            except BaseException:
                _close_quietly(declaration, instance)  # built but never set up: let it go
                raise
        return Entry(
            declaration.kind,
            declaration.name,
            instance,
            declaration.config,
            declaration.plugin,
            str(declaration.source) if declaration.source else None,
            metadata(info, isolation, compatibility, plugin_class, running),
            handle,
        )

    def _timed(
        self,
        declaration: Declaration,
        doing: str,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        late: Callable[[bool, Any], None],
    ) -> Any:
        """Run a guarded plugin call under ``setup_timeout_s`` (see the module docstring).

        Raises:
            PluginLoadError: it raised, or did not return in time (a ``_TimedOut``).
        """
        if self.isolation(declaration) == "process":
            return _guarded(declaration, doing, function, *args)  # bounded by the channel
        what = f"{label(declaration)}: {doing}"
        key = f"{declaration.kind}/{declaration.name}/{doing}"
        if _still_running(key):
            raise PluginLoadError(
                f"{what} was not started: the previous {doing} of this declaration, given up "
                f"on after {self.setup_timeout_s:g} s, has still not returned."
            )
        if self._cancelled.is_set():
            raise PluginLoadError(f"{what} was not started: the host is stopping.")
        call = _TimedCall(what, key, function, args, late)
        if call.run(self.setup_timeout_s, self._cancelled):
            return _guarded(declaration, doing, call.outcome)
        if self._cancelled.is_set():
            raise _TimedOut(f"{what} was given up on: the host is stopping.")
        raise _TimedOut(
            f"{what} did not return within {self.setup_timeout_s:g} s "
            "(sandbox.limits.setup_timeout_s); it was left running on its own thread, and "
            "what it returns will be let go."
        )

    def secret_paths(self, declaration: Declaration) -> frozenset[FieldPath]:
        """Return the config paths ``declaration``'s plugin schema marks secret
        (``"meta": {"secret": true}``); none if its class cannot be read."""
        try:
            info = declaration.entry_point or _find(CONTRACTS[declaration.kind], declaration.plugin)
            plugin_class = self.class_of(info, self.isolation(declaration))
        except BaseException:  # it fails its load for that: key patterns still redact
            return frozenset()
        return frozenset(secret_keys(getattr(plugin_class, "config_schema", None)))

    def _check_callables(self, declaration: Declaration, plugin_class: type[Any]) -> None:
        """Refuse a config naming a function outside ``callables.allow`` in a key the
        plugin's schema marks as a callable, before the plugin can import it."""
        for path in callable_keys(getattr(plugin_class, "config_schema", None)):
            value = value_at(declaration.config, path)
            if isinstance(value, str):
                self.facts.callables.check(value)

    def isolation(self, declaration: Declaration) -> str:
        """Return where ``declaration`` runs: its own choice, else the sandbox default."""
        return declaration.isolation or self.sandbox.default_isolation

    def _check_policy(self, info: EntryPointInfo) -> None:
        distribution = info.distribution or "<unknown>"
        rule = refusal(self.sandbox, distribution)
        if rule:
            raise PluginRefused(
                f"Plugin {info.name!r} comes from distribution {distribution!r}, which the "
                f"sandbox policy refuses ({rule}). Change sandbox.policy in the host config, "
                f"or use another plugin.",
                distribution=distribution,
                rule=rule,
            )

    def _needs_probe(self, info: EntryPointInfo) -> bool:
        if not self.sandbox.probe_imports or info.distribution == HOST_DISTRIBUTION:
            return False
        return info.target.partition(":")[0] not in sys.modules  # imported: nothing to guard

    def _run_probe(self, info: EntryPointInfo) -> ProbeResult:
        dist = (info.distribution, info.version) if info.distribution and info.version else None
        result = probe_import(
            info.target,
            timeout_s=self.sandbox.import_timeout_s,
            limits=self._limits(),
            distribution=dist,
            cache=self._probes,
        )
        if not result.ok:
            raise result.to_error(distribution=info.distribution)
        return result

    def _limits(self) -> Limits:
        sandbox = self.sandbox
        return Limits(
            memory_mb=sandbox.memory_mb, cpu_s=sandbox.cpu_s, open_files=sandbox.open_files
        )

    def _spawn(self, declaration: Declaration, info: EntryPointInfo) -> tuple[Any, type[Any]]:
        from .isolation import IsolationOptions, spawn_plugin

        options = IsolationOptions(
            env=dict(declaration.env),
            timeout_s=declaration.timeout_s or self.sandbox.call_timeout_s,
            start_timeout_s=self.sandbox.import_timeout_s,
            limits=self._limits(),
        )
        config = thaw(declaration.config)
        facts = {"state_dir": self.facts.state_dir, "callables": list(self.facts.callables.allow)}
        spawn = functools.partial(
            spawn_plugin,
            declaration.kind,
            info.target,
            name=declaration.name,
            options=options,
            facts=facts,
        )
        if kind_info(declaration.kind).per_run:
            # One short-lived child checks that the reader loads; each run gets its own.
            checked = spawn(config)
            checked.close()
            return _reader_factory(spawn), type(checked)
        proxy = spawn(config)
        return proxy, type(proxy)


def _reader_factory(spawn: Callable[..., Any]) -> Callable[..., Any]:
    def open_reader(config: Mapping[str, Any], deps: Mapping[str, Any] | None = None) -> Any:
        return spawn(thaw(config), deps=dict(deps or {}))

    return open_reader


def _factory(plugin_class: type[Any], kind: str, facts: HostFacts) -> Callable[..., Any]:
    """A per-run kind's registry instance: builds one plugin per run, with host facts."""

    def build(config: Mapping[str, Any], deps: Mapping[str, Any] | None = None) -> Any:
        return build_plugin(plugin_class, kind, config, facts, deps)

    return build


def _contract_of(info: EntryPointInfo) -> Contract | None:
    """The contract of the namespace ``info`` was found in (``None`` outside flowstone.*)."""
    return next((c for c in CONTRACTS.values() if c.namespace == info.namespace), None)


def _find(contract: Contract, plugin: str) -> EntryPointInfo:
    info = entry_points.find(contract.namespace, plugin)
    if info is not None:
        return info
    names = [i.name for i in entry_points.discover(contract.namespace)]
    hint = difflib.get_close_matches(plugin, names, n=1)
    raise NotFound(
        f"No plugin {plugin!r} in {contract.namespace} (installed: {', '.join(names) or 'none'})."
        + (
            f" Did you mean {hint[0]!r}?" if hint else " Install the distribution that provides it."
        ),
        namespace=contract.namespace,
    )


def _guarded(declaration: Declaration, doing: str, function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except FlowStoneError:
        raise
    except BaseException as exc:
        raise PluginLoadError(
            f"{label(declaration)}: {doing} raised {type(exc).__name__}: {exc}"
        ) from exc


def teardown_entry(entry: Entry, timeout_s: float | None = None) -> bool:
    """Release what a loaded entry holds: ``teardown`` a resource handle, ``close`` a plugin.

    Never raises: a plugin failing to let go is logged, and the host carries on; ``close``
    runs even when ``teardown`` raised. With ``timeout_s``, both run on a thread of their own
    and one that takes longer is left behind there and reported.

    Returns:
        Whether it finished within ``timeout_s``.
    """
    if timeout_s is None:
        _teardown(entry)
        return True
    what = f"{entry.kind} {entry.name!r}: teardown"
    key = f"{entry.kind}/{entry.name}/teardown/{id(entry)}"
    return _TimedCall(what, key, _teardown, (entry,), _ignore).run(timeout_s)


def _teardown(entry: Entry) -> None:
    instance = entry.instance
    if isinstance(instance, Resource) and entry.handle is not None:
        try:
            instance.teardown(entry.handle)
        except BaseException:
            log.exception(
                "Tearing down %s %r raised; it was dropped anyway.", entry.kind, entry.name
            )
    if isinstance(instance, Plugin):
        _close_quietly(entry, instance)


def _close_quietly(owner: Entry | Declaration, instance: Plugin) -> None:
    try:
        instance.close()
    except BaseException:
        log.exception("Closing %s %r raised; it was dropped anyway.", owner.kind, owner.name)


# -- calls under a deadline ----------------------------------------------------------------


class _TimedOut(PluginLoadError):
    """A plugin call did not return within ``setup_timeout_s``."""


#: Calls given up on whose thread still runs, by key (declaration and step).
_ABANDONED: dict[str, _TimedCall] = {}
_ABANDONED_LOCK = threading.Lock()


def abandoned_calls() -> list[dict[str, Any]]:
    """Return the plugin calls given up on that have still not returned, oldest first:
    what they were, since when (epoch seconds) and their thread's name, JSON-safe."""
    with _ABANDONED_LOCK:
        for key in [k for k, c in _ABANDONED.items() if c.finished]:
            del _ABANDONED[key]
        calls = sorted(_ABANDONED.values(), key=lambda c: c.started)
    return [{"call": c.what, "running_since": c.started, "thread": c.thread.name} for c in calls]


def _still_running(key: str) -> bool:
    with _ABANDONED_LOCK:
        call = _ABANDONED.get(key)
        if call is not None and call.finished:
            del _ABANDONED[key]
            return False
        return call is not None


class _TimedCall:
    """One plugin call on a daemon thread of its own; :meth:`run` waits for it a while."""

    def __init__(
        self,
        what: str,
        key: str,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        late: Callable[[bool, Any], None],
    ) -> None:
        self.what, self.key = what, key
        self._function, self._args, self._late = function, args, late
        self._lock = threading.Lock()
        self._result: Any = None
        self._error: BaseException | None = None
        self.finished = False
        self._abandoned = False
        self.started = time.time()
        context = contextvars.copy_context()  # its spans and telemetry, as if called here
        self.thread = threading.Thread(
            target=context.run, args=(self._work,), name=f"flowstone-plugin-{key}", daemon=True
        )

    def run(self, timeout_s: float, cancel: threading.Event | None = None) -> bool:
        """Start the call and wait up to ``timeout_s`` (less if ``cancel`` is set); return
        whether it returned."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        self.thread.start()
        while True:
            left = deadline - time.monotonic()
            self.thread.join(max(min(left, 0.05 if cancel is not None else left), 0.0))
            if not self.thread.is_alive() or left <= 0 or (cancel is not None and cancel.is_set()):
                break
        with self._lock:
            if self.finished:
                return True
            self._abandoned = True
        with _ABANDONED_LOCK:
            _ABANDONED[self.key] = self
        log.error(
            "%s did not return %s; its thread %s is left behind.",
            self.what,
            f"within {timeout_s:g} s" if cancel is None or not cancel.is_set() else "(stopping)",
            self.thread.name,
            extra={"plugin_thread": self.thread.name},
        )
        return False

    def outcome(self) -> Any:
        """Return what the call returned, or raise what it raised."""
        if self._error is not None:
            raise self._error
        return self._result

    def _work(self) -> None:
        try:
            self._result = self._function(*self._args)
        except BaseException as exc:  # the caller raises it, or it is logged as late
            self._error = exc
        with self._lock:
            self.finished = True
            abandoned = self._abandoned
        if abandoned:
            log.warning(
                "%s returned after it was given up on (%s); letting go of what it returned.",
                self.what,
                "raised " + type(self._error).__name__ if self._error else "returned",
            )
            self._late(self._error is None, self._result)


def _ignore(ok: bool, result: Any) -> None:
    """A late teardown returned: nothing to let go."""


def _let_go(ok: bool, instance: Any) -> None:
    """A constructor returned after its declaration failed: close what it built."""
    if ok and isinstance(instance, Plugin):
        try:
            instance.close()
        except BaseException:
            log.exception("Closing a plugin built too late raised; it was dropped anyway.")


def _let_go_handle(declaration: Declaration, instance: Resource, ok: bool, handle: Any) -> None:
    """A ``setup()`` returned (or raised) after its declaration failed: tear down what it
    set up, and close the plugin."""
    if ok:
        try:
            instance.teardown(handle)
        except BaseException:
            log.exception("Tearing down %s, set up too late, raised.", label(declaration))
    _close_quietly(declaration, instance)
