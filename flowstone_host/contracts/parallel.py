"""The parallel coordinator contract: named branches of one asset, and their join."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ..errors import Conflict, NotFound, ValidationError
from .plugin import Plugin
from .types import ExecutionState, ExecutionStatus

__all__ = [
    "ParallelCoordinator",
    "check_branches",
    "not_ready_for_join",
    "unknown_branch",
    "unknown_execution",
]


def check_branches(branches: Sequence[str], optional: Collection[str] = ()) -> list[str]:
    """Return the branch names of a new execution, or raise if they cannot make one.

    Every coordinator uses this one rule.

    Raises:
        ValidationError: no branches, duplicate names, or ``optional`` names unknown ones.
    """
    names = [str(b) for b in branches]
    if not names or len(set(names)) != len(names):
        raise ValidationError(f"Branches must be unique and non-empty, got {names!r}.")
    unknown = set(optional) - set(names)
    if unknown:
        raise ValidationError(f"Optional branches {sorted(unknown)!r} are not branches.")
    return names


def unknown_execution(execution_id: str) -> NotFound:
    """Return the error of every method for an execution id that was never created."""
    return NotFound(f"No parallel execution {execution_id!r}.", execution_id=execution_id)


def unknown_branch(execution_id: str, branch: str) -> NotFound:
    """Return the error of ``complete_branch`` and ``fail_branch`` for a branch the execution
    was not created with."""
    return NotFound(
        f"Execution {execution_id!r} has no branch {branch!r}.",
        execution_id=execution_id,
        branch=branch,
    )


def not_ready_for_join(execution_id: str, state: str) -> Conflict:
    """Return the error of ``execute_join`` for an execution in ``state``, which is neither
    ``ready_for_join`` nor ``complete``."""
    return Conflict(
        f"Execution {execution_id!r} is {state}, not ready_for_join.",
        execution_id=execution_id,
        state=state,
    )


class ParallelCoordinator(Plugin):
    """Tracks the branches of a parallel asset and runs its join once.

    Branch states go ``pending`` → ``running`` → ``complete`` or ``failed``. A branch is
    required unless listed as optional.

    Invariants (``flowstone_host.testing.ParallelCoordinatorContract`` checks each one):

    - ``schedule_branches`` moves every pending branch to ``running`` and returns their
      names, in the order ``create_execution`` was given them (``status`` lists them in that
      order too); calling it again returns no branch twice.
    - A branch's first outcome is final: completing or failing it twice counts once.
    - ``complete_branch`` and ``fail_branch`` return the execution's status after recording:
      ``pending`` (nothing scheduled or finished yet), ``running``, ``ready_for_join`` or
      ``failed``.
    - The execution is ``ready_for_join`` exactly when every branch has finished and every
      required branch completed; the failure of a required branch makes it ``failed`` at
      once, and it stays ``failed`` whatever the other branches do; optional branches may
      fail without failing it.
    - ``execute_join`` runs ``join_fn`` once, with ``{branch: result}`` of the completed
      branches, records the result and marks the execution ``complete``; a second call
      returns the recorded result without running ``join_fn`` again.
    - An unknown execution id raises :class:`~flowstone_host.NotFound` from every method.

    Built-in coordinators raise the errors :func:`unknown_execution`, :func:`unknown_branch`
    and :func:`not_ready_for_join` return, which carry the execution id (and the branch, or
    the state) as context.
    """

    @abstractmethod
    def create_execution(
        self,
        run_id: str,
        asset: str,
        branches: Sequence[str],
        *,
        optional: Collection[str] = (),
        **opts: Any,
    ) -> str:
        """Create an execution with every branch ``pending``; return its id.

        Raises:
            ValidationError: no branches, duplicate names, or ``optional`` names unknown ones.
        """

    @abstractmethod
    def schedule_branches(self, execution_id: str) -> list[str]:
        """Mark pending branches ``running`` and return their names.

        Raises:
            NotFound: unknown execution.
        """

    @abstractmethod
    def complete_branch(self, execution_id: str, branch: str, result: Any) -> ExecutionState:
        """Record a branch's result; return the execution's status.

        Raises:
            NotFound: unknown execution or branch.
        """

    @abstractmethod
    def fail_branch(self, execution_id: str, branch: str, error: Any) -> ExecutionState:
        """Record a branch's failure; return the execution's status.

        Raises:
            NotFound: unknown execution or branch.
        """

    @abstractmethod
    def execute_join(self, execution_id: str, join_fn: Callable[[Mapping[str, Any]], Any]) -> Any:
        """Run ``join_fn`` over the branch results once and return its result.

        Raises:
            NotFound: unknown execution.
            Conflict: the execution is not ``ready_for_join`` (nor already ``complete``).
        """

    @abstractmethod
    def status(self, execution_id: str) -> ExecutionStatus:
        """Return the execution's status and each branch's state.

        Raises:
            NotFound: unknown execution.
        """
