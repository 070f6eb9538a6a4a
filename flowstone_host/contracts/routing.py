"""The routing coordinator contract: durable, replayable routing decisions."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from ..errors import NotFound
from .io_manager import Partition
from .plugin import Plugin

__all__ = ["RoutingCoordinator", "no_decision", "unknown_decision"]


def no_decision(run_id: str, router_asset: str, partition_key: str) -> NotFound:
    """Return the error of ``get`` when no decision was recorded for that place."""
    return NotFound(
        f"No routing decision for router {router_asset!r}, run {run_id!r}, "
        f"partition {partition_key!r}.",
        run_id=run_id,
        router_asset=router_asset,
        partition=partition_key,
    )


def unknown_decision(decision_id: str) -> NotFound:
    """Return the error of ``to_output`` for a decision id that was never recorded."""
    return NotFound(f"No routing decision {decision_id!r}.", decision_id=decision_id)


class RoutingCoordinator(Plugin):
    """Records which branch a router chose for ``(run, router asset, partition)``.

    Invariants (``flowstone_host.testing.RoutingCoordinatorContract`` checks each one):

    - A decision, once recorded, is what ``get()`` returns forever after.
    - Recording the same branch again returns the same decision id; recording a different
      branch raises :class:`~flowstone_host.Conflict` and changes nothing.
    - ``selected_branch`` may be ``None``: the router chose no branch.
    - Decisions of different runs, assets or partitions are independent.
    - ``to_output`` returns a JSON-safe dict with ``decision_id``, ``run_id``,
      ``router_asset``, ``partition`` (its canonical key) and ``selected_branch``.
    """

    @abstractmethod
    def record(
        self,
        run_id: str,
        router_asset: str,
        partition: Partition,
        selected_branch: str | None,
        **opts: Any,
    ) -> str:
        """Record a decision and return its id (idempotent for the same branch).

        Raises:
            Conflict: a different branch was already recorded.
        """

    @abstractmethod
    def get(self, run_id: str, router_asset: str, partition: Partition) -> str | None:
        """Return the recorded branch (``None`` if the router chose none).

        Raises:
            NotFound: no decision was recorded.
        """

    @abstractmethod
    def to_output(self, decision_id: str) -> dict[str, Any]:
        """Return the decision as a JSON-safe asset output.

        Raises:
            NotFound: unknown decision id.
        """
