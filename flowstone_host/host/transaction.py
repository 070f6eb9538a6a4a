"""One reload's work: diff the validated manifests against what is live, load what changed.

A :class:`Transaction` never touches the live snapshot: it builds the next one's entries
and says what to retire. Unchanged declarations keep their live instances; a declaration
whose new version fails to load (or comes up unhealthy) keeps its previous instance; an
asset whose IO manager or reader is not live is rejected with the reason.

A fresh entry's health check starts as soon as it is loaded and is waited for only when
its verdict is needed (by a declaration that depends on it, or at the end), so slow checks
of independent declarations overlap instead of adding up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..config import FieldPath
from ..contracts.types import Health
from ..errors import FlowStoneError
from ..graph import upstream_of
from ..kinds import Kind, has_fallback
from ..loading import entry_points
from ..loading.entry import Entry
from ..loading.loader import PluginLoader
from ..manifest.model import Asset, Declaration, ManifestSet
from .health import HealthChecker
from .report import Change, DeclarationState, capped

__all__ = ["Transaction"]

log = logging.getLogger(__name__)

Key = tuple[str, str]


class Transaction:
    """Plans and loads one reload.

    Args:
        loader: Builds entries from declarations.
        live: What the host runs now, by ``(kind, name)``.
        desired: The validated manifests to converge to.
        health: Checks freshly loaded entries and records the results.
        retry: Load declarations that failed before even if they did not change.
    """

    def __init__(
        self,
        loader: PluginLoader,
        live: Mapping[Key, DeclarationState],
        desired: ManifestSet,
        health: HealthChecker,
        *,
        retry: bool,
    ) -> None:
        self._loader = loader
        self._live = live
        self._desired = desired
        self._health = health
        self._retry = retry
        self.states: dict[Key, DeclarationState] = {}
        self.changes: list[Change] = []
        self.retired: list[Entry] = []
        self.added: list[Entry] = []
        self.assets: list[Asset] = []  # admitted, in the order read
        self._pending: dict[Key, _Pending] = {}  # loaded, health check running

    @property
    def changed(self) -> bool:
        """Whether the next snapshot differs from the live one: other entries or assets."""
        live = {id(s.entry) for s in self._live.values() if s.entry is not None}
        live_assets = [s.model for k, s in self._live.items() if _serving_asset(k, s)]
        return {id(e) for e in self.entries()} != live or live_assets != self.assets

    @property
    def failed(self) -> bool:
        """Whether any declaration or asset failed."""
        return any(change.action == "failed" for change in self.changes)

    def entries(self) -> list[Entry]:
        """The entries of the next snapshot."""
        return [state.entry for state in self.states.values() if state.entry is not None]

    def run(self) -> None:
        """Converge: declarations in order, then assets, then what left."""
        self._declarations(_in_dependency_order(self._desired.declarations))
        for key, (declaration, reason) in self._desired.unloadable.items():
            self.states[key] = self._failed(key, declaration, reason, _provenance(declaration))
        for name, asset in self._desired.assets.items():
            self.states[Kind.ASSET, name] = self._asset(asset)
        self._drop_orphans()
        for key, old in self._live.items():
            if key not in self.states:
                if old.entry is not None:
                    self.retired.append(old.entry)
                self.changes.append(Change(key[0], key[1], "removed"))

    def _declarations(self, order: list[tuple[Key, Declaration]]) -> None:
        """Load, check and admit ``order``'s declarations; their changes keep its order."""
        position = {key: index for index, (key, _) in enumerate(order)}
        try:
            for key, declaration in order:
                for name in declaration.depends_on:  # their verdicts decide this one
                    self._settle((Kind.RESOURCE, name))
                missing = self._missing_resources(declaration)
                if missing:
                    facts = _provenance(declaration)
                    self.states[key] = self._failed(key, declaration, missing, facts)
                else:
                    self._declaration(key, declaration)
            for key in list(self._pending):
                self._settle(key)
        finally:
            for pending in self._pending.values():  # only when interrupted: let them go
                self._loader.teardown(pending.entry)
        self.changes.sort(key=lambda change: position.get((change.kind, change.name), -1))

    def _declaration(self, key: Key, declaration: Declaration) -> None:
        """Reuse, fail or load ``declaration``; a loaded one is admitted once its health
        check (started now) has a verdict: see :meth:`_settle`."""
        old = self._live.get(key)
        if old is not None and old.model == declaration and not self._resource_renewed(declaration):
            old.model = declaration  # equal, but it may have moved: /status shows where it is
            if old.state != "failed":
                self.changes.append(Change(*key, "reused"))
                self.states[key] = old
                return
            if not self._retry:
                self.states[key] = old  # failed before, nothing changed: wait for a change
                return  # or a manual reload
        try:
            entry = self._loader.load(declaration, self._handles(declaration))
        except FlowStoneError as exc:
            self.states[key] = self._failed(key, declaration, exc.message, exc.context)
            return
        previous = old.entry if old is not None else None
        self._pending[key] = _Pending(declaration, entry, previous, self._health.start(entry))
        # its place in /status, until it is settled
        self.states[key] = DeclarationState(declaration, None, "failed", "being checked")

    def _settle(self, key: Key) -> None:
        """Wait for a pending entry's health check and admit it (or keep its predecessor)."""
        pending = self._pending.get(key)
        if pending is None:
            return
        health = pending.verdict()
        del self._pending[key]
        self.states[key] = self._admit(
            key, pending.declaration, pending.entry, pending.previous, health
        )

    def _failed(
        self, key: Key, declaration: Declaration, reason: str, facts: Mapping[str, Any]
    ) -> DeclarationState:
        """Record that ``declaration`` could not load; its previous instance, if any and
        if it can still serve, stays."""
        previous = self._keepable(key, declaration)
        reason = capped(reason)  # a plugin's message: bounded in /status and the log
        log.error("%s %r failed to load: %s", key[0], key[1], reason)
        self.changes.append(Change(*key, "failed", reason, kept=previous is not None))
        known = {k: facts[k] for k in ("distribution", "version") if facts.get(k)}
        secrets = self._secrets(declaration)
        return DeclarationState(
            declaration, previous, "failed", reason, facts=known, secrets=secrets
        )

    def _admit(
        self,
        key: Key,
        declaration: Declaration,
        entry: Entry,
        previous: Entry | None,
        health: Health | None,
    ) -> DeclarationState:
        """Decide, by its health, whether a fresh entry replaces ``previous``."""
        if health is not None and not health.healthy:
            kept = self._keepable(key, declaration)  # retires one that cannot serve on
            if kept is not None:
                reason = f"new version is unhealthy: {health.reason}"
                self._loader.teardown(entry)
                self.changes.append(Change(*key, "failed", reason, kept=True))
                facts = {k: entry.metadata.get(k) for k in ("distribution", "version")}
                secrets = self._secrets(declaration)
                return DeclarationState(
                    declaration, kept, "failed", reason, facts=facts, secrets=secrets
                )
        elif previous is not None:
            self.retired.append(previous)
        self.added.append(entry)
        state = DeclarationState(declaration, entry, secrets=self._secrets(declaration))
        self._health.observe(state, health)
        self.changes.append(Change(*key, "replaced" if previous else "added", state.reason))
        return state

    def _asset(self, asset: Asset) -> DeclarationState:
        key = (Kind.ASSET, asset.name)
        missing = self._missing_dependencies(asset)
        old = self._live.get(key)
        if missing:
            self.changes.append(Change(*key, "failed", missing, kept=False))
            return DeclarationState(asset, None, "failed", missing)
        self.assets.append(asset)
        if old is not None and old.model == asset and old.state == "active":
            old.model = asset  # equal, but it may have moved: /status shows where it is
            self.changes.append(Change(*key, "reused"))
            return old
        self.changes.append(Change(*key, "added" if old is None else "replaced"))
        return DeclarationState(asset, None)

    def _drop_orphans(self) -> None:
        """Fail each admitted asset that reads an asset not admitted, until none does."""
        admitted = {asset.name for asset in self.assets}
        while True:
            orphan = next(
                (a for a in self.assets if any(d not in admitted for d in upstream_of(a))), None
            )
            if orphan is None:
                return
            missing = next(d for d in upstream_of(orphan) if d not in admitted)
            reason = f"it reads asset {missing!r}, which is not loaded"
            self.assets.remove(orphan)
            admitted.discard(orphan.name)
            self.changes = [
                c for c in self.changes if (c.kind, c.name) != (Kind.ASSET, orphan.name)
            ]
            self.changes.append(Change(Kind.ASSET, orphan.name, "failed", reason, kept=False))
            self.states[Kind.ASSET, orphan.name] = DeclarationState(orphan, None, "failed", reason)

    def _secrets(self, declaration: Declaration) -> frozenset[FieldPath]:
        """The config paths ``declaration``'s plugin schema marks secret (none for one
        whose plugin cannot be read at all)."""
        if (declaration.kind, declaration.name) in self._desired.unloadable:
            return frozenset()
        return self._loader.secret_paths(declaration)

    def _keepable(self, key: Key, declaration: Declaration) -> Entry | None:
        """Return the live entry of ``key`` if it may keep serving when its new version
        fails; one built on a resource this reload replaces may not (the old handle is torn
        down with the old resource), so it is retired instead."""
        old = self._live.get(key)
        if old is None or old.entry is None:
            return None
        if self._resource_renewed(declaration):
            self.retired.append(old.entry)
            return None
        return old.entry

    def _resource_renewed(self, declaration: Declaration) -> bool:
        """Whether a resource ``declaration`` depends on was set up anew in this reload:
        then it is set up again too, against the new one."""
        renewed = {id(e) for e in self.added}
        return any(
            (state := self.states.get((Kind.RESOURCE, name))) is not None
            and id(state.entry) in renewed
            for name in declaration.depends_on
        )

    def _handles(self, declaration: Declaration) -> dict[str, Any]:
        """The set-up handles of the resources ``declaration`` depends on, by name."""
        states = (self.states[Kind.RESOURCE, name] for name in declaration.depends_on)
        return {s.name: s.entry.handle for s in states if s.entry is not None}

    def _missing_resources(self, declaration: Declaration) -> str | None:
        for name in declaration.depends_on:
            state = self.states.get((Kind.RESOURCE, name))
            if state is None or state.entry is None:  # a kept previous version will do
                reason = state.reason if state is not None else "it is not declared"
                return f"it depends on resource {name!r}, which is not set up ({reason})"
        return None

    def _missing_dependencies(self, asset: Asset) -> str | None:
        for kind, name in asset.plugins():
            if (kind, name) not in self.states and has_fallback(kind, name):
                continue  # an undeclared default stands for the kind's fallback plugin
            state = self.states.get((kind, name))
            if state is None or state.entry is None:
                reason = state.reason if state is not None else "it is not declared"
                return f"its {kind} {name!r} is not loaded ({reason})"
        return None


class _Pending:
    """A loaded entry whose health check runs; ``verdict()`` waits for its result."""

    def __init__(
        self,
        declaration: Declaration,
        entry: Entry,
        previous: Entry | None,
        verdict: Callable[[], Health | None],
    ) -> None:
        self.declaration, self.entry, self.previous, self.verdict = (
            declaration,
            entry,
            previous,
            verdict,
        )


def _serving_asset(key: Key, state: DeclarationState) -> bool:
    return key[0] == Kind.ASSET and state.state == "active"


def _provenance(declaration: Declaration) -> dict[str, str]:
    return entry_points.provenance(declaration.namespace, declaration.plugin)


def _in_dependency_order(
    declarations: Mapping[Key, Declaration],
) -> list[tuple[Key, Declaration]]:
    """Order declarations so each comes after the resources it depends on, else as read.

    Iterative, so a long chain cannot exhaust the stack. Validation refuses cycles; one
    that got here anyway is broken at the first repeat.
    """
    ordered: dict[Key, Declaration] = {}
    entered: set[Key] = set()
    for root in declarations:
        stack: list[Key] = [root]
        while stack:
            key = stack[-1]
            if key in ordered:
                stack.pop()
                continue
            needed = [
                r
                for name in declarations[key].depends_on
                if (r := (Kind.RESOURCE, name)) in declarations and r not in ordered
            ]
            if key not in entered and needed:
                entered.add(key)
                stack.extend(r for r in reversed(needed) if r not in entered)
                continue
            ordered[key] = declarations[key]
            stack.pop()
    return list(ordered.items())
