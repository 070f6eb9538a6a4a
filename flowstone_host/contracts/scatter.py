"""The scatter coordinator contract: a barrier over the items of one scatter run."""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import NotSupported, ValidationError
from .io_manager import Partition
from .plugin import Plugin
from .types import BarrierState, BarrierStatus, Recorded

__all__ = ["ScatterCoordinator", "check_tolerated", "threshold_exceeded"]

#: Serializes the default ``record_outcomes``, so its before/after counts are its own.
_DEFAULT_RECORDING = threading.Lock()


def check_tolerated(tolerated: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return ``tolerated_failures`` in canonical form, or raise if malformed.

    Raises:
        ValidationError: not ``None``, ``{"count": N >= 0}`` or ``{"percent": 0..100}``.
    """
    if tolerated is None:
        return None
    if isinstance(tolerated, Mapping) and len(tolerated) == 1:
        ((key, value),) = tolerated.items()
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if key == "count" and number_ok and value >= 0 and int(value) == value:
            return {"count": int(value)}
        if key == "percent" and number_ok and 0 <= value <= 100:
            return {"percent": float(value)}
    raise ValidationError(
        f"tolerated_failures must be {{count: N}} (N >= 0) or {{percent: P}} (0-100), "
        f"got {tolerated!r}"
    )


def threshold_exceeded(
    failed: int, total: int, tolerated: Mapping[str, Any] | None, *, final: bool = True
) -> bool:
    """Return whether ``failed`` failures among ``total`` keys exceed the tolerated threshold.

    ``tolerated`` is ``None`` (no failure is tolerated), ``{"count": N}`` (more than N
    failures exceed it, as soon as they happen) or ``{"percent": P}`` (failures above P% of
    the total exceed it; judged once the key set is ``final``, since a streaming total is
    not known before). Every coordinator uses this one rule.
    """
    if failed == 0:
        return False
    if not tolerated:
        return True
    if "count" in tolerated:
        return failed > int(tolerated["count"])
    return final and failed * 100 > float(tolerated["percent"]) * total


class ScatterCoordinator(Plugin):
    """Tracks every item of a scatter run in a barrier and gathers their results.

    A scatter key is a string naming one item (unique within its barrier). Results and
    errors must be JSON-serialisable when the coordinator persists them.

    Invariants (``flowstone_host.testing.ScatterCoordinatorContract`` checks each one):

    - ``create_barrier`` returns a new id each time; ids of different runs never collide.
    - ``insert_keys`` adds keys; inserting a key already present adds nothing.
    - A key's first outcome is final: ``complete()`` or ``fail()`` of the same key twice
      counts once, and an outcome recorded after the other is ignored.
    - The barrier becomes ``complete`` exactly when its key set is final and every key has
      completed or failed within the tolerated threshold; never earlier. An empty final key
      set is ``complete`` at once.
    - Failures beyond ``tolerated_failures`` (``{"count": N}`` at once, or ``{"percent": P}``
      of the final key set) turn it ``threshold_exceeded``; see :func:`threshold_exceeded`.
    - Once ``complete``, ``threshold_exceeded`` or ``cancelled``, the status never changes,
      further outcomes are ignored (counts stay as they were) and ``complete``/``fail``
      return that status.
    - ``gather`` returns ``{key: result}`` for every completed key, failed keys excluded.
    - An unknown barrier id raises :class:`~flowstone_host.NotFound` from every method.
    - Methods are safe to call from several threads (and, for shared backends, processes).

    Durable runs (optional methods; a coordinator that keeps state for the life of one
    process may implement them in memory, one that cannot raises ``NotSupported``):

    - ``find_barrier(run_id, asset, partition)`` returns the id ``create_barrier`` made for
      them, so a restarted run finds its barrier again.
    - ``save_checkpoint`` then ``load_checkpoint`` returns the saved reader checkpoint; the
      runtime saves one only after the keys of every item it covers are inserted and
      finished, so resuming from it loses no item.
    - ``finished_keys(id, keys)`` returns those of ``keys`` that have an outcome, so a
      resumed run skips them.
    - ``record_outcomes`` records many outcomes with the same semantics as ``complete`` and
      ``fail`` one by one (completions first); shared backends override it to do so in one
      transaction, and to say exactly which call moved the barrier to a finished state.

    Operating runs (contract 1.2, optional; the default raises ``NotSupported``):

    - ``retry_failed(id)`` moves every failed key back to pending (a redrive), reopens the
      barrier and forgets its reader checkpoint; each failed key is returned by exactly one
      call, and the failed count drops by exactly that many.
    - ``set_tolerated_failures(id, tolerated)`` changes a pending barrier's threshold (a
      live retune) and judges the barrier by it at once.
    """

    @abstractmethod
    def create_barrier(
        self,
        run_id: str,
        asset: str,
        partition: Partition,
        *,
        tolerated_failures: Mapping[str, Any] | None = None,
        **opts: Any,
    ) -> str:
        """Create an empty, open barrier and return its id.

        Args:
            run_id: The run this scatter belongs to.
            asset: The scatter asset.
            partition: The partition being materialized.
            tolerated_failures: ``{"count": N}``, ``{"percent": P}`` or ``None``; anything
                else is refused (:func:`check_tolerated` is the rule).
            **opts: Implementation options, ignored when unknown.

        Raises:
            ValidationError: ``tolerated_failures`` is malformed.
        """

    @abstractmethod
    def insert_keys(self, barrier_id: str, keys: Iterable[str], *, final: bool = True) -> None:
        """Add the keys of items about to run.

        Args:
            barrier_id: The barrier.
            keys: Scatter keys; duplicates of present keys are ignored.
            final: Whether this is the last insertion. A streaming run passes ``False``
                until its reader is exhausted; the barrier cannot complete before the key
                set is final.

        Raises:
            NotFound: unknown barrier.
            Conflict: the key set was already final.
        """

    @abstractmethod
    def complete(self, barrier_id: str, key: str, result: Any) -> BarrierState:
        """Record that ``key`` succeeded with ``result``; return the barrier's status.

        Raises:
            NotFound: unknown barrier, or a key never inserted.
        """

    @abstractmethod
    def fail(self, barrier_id: str, key: str, error: Any) -> BarrierState:
        """Record that ``key`` failed with ``error``; return the barrier's status.

        Raises:
            NotFound: unknown barrier, or a key never inserted.
        """

    @abstractmethod
    def gather(self, barrier_id: str) -> dict[str, Any]:
        """Return ``{key: result}`` of every completed key.

        Raises:
            NotFound: unknown barrier.
        """

    @abstractmethod
    def cancel(self, barrier_id: str) -> None:
        """Cancel the barrier: its status becomes ``cancelled`` unless already finished.

        Raises:
            NotFound: unknown barrier.
        """

    @abstractmethod
    def status(self, barrier_id: str) -> BarrierStatus:
        """Return the barrier's status and counts.

        Raises:
            NotFound: unknown barrier.
        """

    def record_outcomes(
        self,
        barrier_id: str,
        completed: Mapping[str, Any] | None = None,
        failed: Mapping[str, Any] | None = None,
    ) -> Recorded:
        """Record ``{key: result}`` completions, then ``{key: error}`` failures.

        The default calls :meth:`complete` and :meth:`fail` once per key under one lock,
        so ``counted`` and ``transitioned`` are exact when every outcome of this process
        goes through it; backends shared by processes override it.

        Raises:
            NotFound: unknown barrier, or a key never inserted.
        """
        with _DEFAULT_RECORDING:
            before = self.status(barrier_id)
            state: BarrierState = before.status
            for key, result in (completed or {}).items():
                state = self.complete(barrier_id, key, result)
            for key, error in (failed or {}).items():
                state = self.fail(barrier_id, key, error)
            after = self.status(barrier_id)
        counted = after.completed + after.failed - before.completed - before.failed
        return Recorded(state, counted, not before.finished and after.finished)

    def find_barrier(self, run_id: str, asset: str, partition: Partition) -> str | None:
        """Return the barrier created for ``(run_id, asset, partition)``, or ``None``.

        Raises:
            NotSupported: the coordinator cannot find barriers again (the default).
        """
        raise NotSupported(f"{type(self).__name__} cannot find a run's barrier again.")

    def save_checkpoint(self, barrier_id: str, checkpoint: Mapping[str, Any] | None) -> None:
        """Store the reader checkpoint (JSON-safe) from which a resumed run reads on.

        Raises:
            NotFound: unknown barrier.
            NotSupported: the coordinator keeps no checkpoint (the default).
        """
        raise NotSupported(f"{type(self).__name__} keeps no reader checkpoint.")

    def load_checkpoint(self, barrier_id: str) -> dict[str, Any] | None:
        """Return the last checkpoint saved, or ``None`` when none was.

        Raises:
            NotFound: unknown barrier.
            NotSupported: the coordinator keeps no checkpoint (the default).
        """
        raise NotSupported(f"{type(self).__name__} keeps no reader checkpoint.")

    def finished_keys(self, barrier_id: str, keys: Iterable[str]) -> set[str]:
        """Return the keys among ``keys`` that already have an outcome.

        Raises:
            NotFound: unknown barrier.
            NotSupported: the coordinator cannot tell (the default).
        """
        raise NotSupported(f"{type(self).__name__} cannot report finished keys.")

    def retry_failed(self, barrier_id: str) -> list[str]:
        """Move the failed keys back to pending and return them, sorted (a redrive).

        Their errors are forgotten and the failed count drops by exactly as many keys; a
        barrier that is ``threshold_exceeded``, ``cancelled``, or ``complete`` with failures
        becomes ``pending`` again (its key set stays as final as it was), and its reader
        checkpoint is cleared, since it covered the failed items (a resumed run reads from
        the start and skips finished keys). A ``complete`` barrier without failures stays
        as it is and returns ``[]``. Among concurrent calls, each key is returned once.

        Raises:
            NotFound: unknown barrier.
            NotSupported: the coordinator cannot retry keys (the default).
        """
        raise NotSupported(f"{type(self).__name__} cannot retry failed keys.")

    def set_tolerated_failures(
        self, barrier_id: str, tolerated_failures: Mapping[str, Any] | None
    ) -> BarrierState:
        """Replace the tolerated-failure threshold of a pending barrier; return its status.

        The barrier is judged by the new threshold at once (tightening it below the failures
        already recorded turns it ``threshold_exceeded``). A finished barrier is left as it
        is.

        Raises:
            NotFound: unknown barrier.
            ValidationError: ``tolerated_failures`` is malformed (:func:`check_tolerated`).
            NotSupported: the threshold is fixed at creation (the default).
        """
        raise NotSupported(f"{type(self).__name__} cannot change a barrier's threshold.")
