"""Guarded loading: one declaration in, a registry entry or a precise error out.

Every step that touches plugin code is guarded, so a broken plugin fails its own
declaration and nothing else: finding the entry point, the sandbox policy, the import
probe, the import itself (``SystemExit`` and ``KeyboardInterrupt`` included), the class
checks (base class, abstract methods, contract version and the declaration's range), the
constructor and ``Resource.setup``. The caller collects the errors into a load report.

An in-process constructor, ``setup()``, ``teardown()`` and ``close()`` run on a thread of
their own under ``sandbox.limits.setup_timeout_s``: one that does not return in time fails
its declaration (or is given up on, at teardown), is left behind on its thread and reported
(a log line, and :func:`.timed.abandoned_calls` for ``/status``); what it returns late is let go.
The same declaration's same step is not started again while an abandoned one still runs
(:mod:`.timed`); what a plugin holds is let go through :mod:`.release`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..config import FieldPath, callable_keys, secret_keys, value_at
from ..contracts.resource import Resource
from ..contracts.versions import CONTRACTS, Contract
from ..errors import FlowStoneError, PluginLoadError
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
from .construct import HostFacts, build_plugin, per_run_factory
from .entry import Entry
from .entry_points import EntryPointInfo
from .limits import Limits
from .policy import require_allowed
from .probe import ProbeCache, ProbeResult, probe_import
from .release import close_quietly, let_go, let_go_handle, teardown_entry
from .timed import Late, TimedOut, call_in_time

__all__ = ["HOST_DISTRIBUTION", "PluginLoader"]

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
        return self.class_of(entry_points.require(CONTRACTS[kind].namespace, plugin), isolation)

    def class_of(self, info: EntryPointInfo, isolation: str) -> type[Any]:
        """Return the class of a found entry point; see :meth:`plugin_class`.

        Raises:
            PluginRefused: the sandbox policy refuses its distribution.
            PluginLoadError: the probe or the import failed.
        """
        plugin = info.name
        contract = _contract_of(info)
        require_allowed(self.sandbox, info)
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
        info = _entry_point(declaration)
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
            instance = per_run_factory(plugin_class, declaration.kind, facts)  # one per run
        else:
            build = functools.partial(
                build_plugin, plugin_class, declaration.kind, declaration.config, facts
            )
            instance = self._timed(declaration, "its constructor", build, let_go)
        handle = None
        if isinstance(instance, Resource):
            setup = instance.setup
            try:
                handle = self._timed(
                    declaration,
                    "setup()",
                    functools.partial(setup, thaw(declaration.config)),
                    functools.partial(let_go_handle, declaration, instance),
                )
            except TimedOut:
                raise  # still setting up on its thread: let go once it returns
            except BaseException:
                close_quietly(declaration, instance)  # built but never set up: let it go
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
        self, declaration: Declaration, doing: str, call: Callable[[], Any], late: Late
    ) -> Any:
        """Run ``call``, a guarded plugin call, under ``setup_timeout_s`` (see the module
        docstring); ``late`` lets go of what it returns after it was given up on.

        Raises:
            PluginLoadError: it raised, or did not return in time (a ``TimedOut``).
        """
        if self.isolation(declaration) == "process":
            return _guarded(declaration, doing, call)  # bounded by the channel
        key = f"{declaration.kind}/{declaration.name}/{doing}"
        timeout_s, cancel = self.setup_timeout_s, self._cancelled
        finished = call_in_time(label(declaration), doing, key, call, late, timeout_s, cancel)
        return _guarded(declaration, doing, finished.outcome)

    def secret_paths(self, declaration: Declaration) -> frozenset[FieldPath]:
        """Return the config paths ``declaration``'s plugin schema marks secret
        (``"meta": {"secret": true}``); none if its class cannot be read."""
        try:
            info = _entry_point(declaration)
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


def _entry_point(declaration: Declaration) -> EntryPointInfo:
    """The entry point validation resolved for ``declaration``, else found now."""
    namespace = CONTRACTS[declaration.kind].namespace
    return declaration.entry_point or entry_points.require(namespace, declaration.plugin)


def _contract_of(info: EntryPointInfo) -> Contract | None:
    """The contract of the namespace ``info`` was found in (``None`` outside flowstone.*)."""
    return next((c for c in CONTRACTS.values() if c.namespace == info.namespace), None)


def _guarded(declaration: Declaration, doing: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except FlowStoneError:
        raise
    except BaseException as exc:
        raise PluginLoadError(
            f"{label(declaration)}: {doing} raised {type(exc).__name__}: {exc}"
        ) from exc
