"""One reload's work: diff the validated manifests against what is live, load what changed.

A :class:`Transaction` never touches the live snapshot: it builds the next one's entries
and says what to retire. Unchanged declarations keep their live instances; a declaration
whose new version fails to load (or comes up unhealthy) keeps its previous instance; an
asset whose IO manager or reader is not live is rejected with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..errors import FlowStoneError
from ..graph import upstream_of
from ..kinds import Kind, has_fallback
from ..loading import entry_points
from ..loading.entry import Entry
from ..loading.loader import PluginLoader, teardown_entry
from ..manifest.model import Asset, Declaration, ManifestSet
from .health import HealthChecker
from .report import Change, DeclarationState

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
        for key, declaration in _in_dependency_order(self._desired.declarations):
            missing = self._missing_resources(declaration)
            if missing:
                self.states[key] = self._failed(key, declaration, missing, _provenance(declaration))
            else:
                self.states[key] = self._declaration(key, declaration)
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

    def _declaration(self, key: Key, declaration: Declaration) -> DeclarationState:
        old = self._live.get(key)
        if old is not None and old.model == declaration and not self._resource_renewed(declaration):
            old.model = declaration  # equal, but it may have moved: /status shows where it is
            if old.state != "failed":
                self.changes.append(Change(*key, "reused"))
                return old
            if not self._retry:
                return old  # failed before, nothing changed: wait for a change or a manual reload
        try:
            entry = self._loader.load(declaration, self._handles(declaration))
        except FlowStoneError as exc:
            return self._failed(key, declaration, exc.message, exc.context)
        return self._admit(key, declaration, entry, old.entry if old is not None else None)

    def _failed(
        self, key: Key, declaration: Declaration, reason: str, facts: Mapping[str, Any]
    ) -> DeclarationState:
        """Record that ``declaration`` could not load; its previous instance, if any and
        if it can still serve, stays."""
        previous = self._keepable(key, declaration)
        log.error("%s %r failed to load: %s", key[0], key[1], reason)
        self.changes.append(Change(*key, "failed", reason, kept=previous is not None))
        known = {k: facts[k] for k in ("distribution", "version") if facts.get(k)}
        return DeclarationState(declaration, previous, "failed", reason, facts=known)

    def _admit(
        self, key: Key, declaration: Declaration, entry: Entry, previous: Entry | None
    ) -> DeclarationState:
        """Health-check a fresh entry and decide whether it replaces ``previous``."""
        health = self._health.check(entry)
        if health is not None and not health.healthy:
            kept = self._keepable(key, declaration)  # retires one that cannot serve on
            if kept is not None:
                reason = f"new version is unhealthy: {health.reason}"
                teardown_entry(entry)
                self.changes.append(Change(*key, "failed", reason, kept=True))
                facts = {k: entry.metadata.get(k) for k in ("distribution", "version")}
                return DeclarationState(declaration, kept, "failed", reason, facts=facts)
        elif previous is not None:
            self.retired.append(previous)
        self.added.append(entry)
        state = DeclarationState(declaration, entry)
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
