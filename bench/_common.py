"""Shared timing helpers: every figure is printed next to the raw floor from the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Result", "median_ns_per_op", "print_results"]


@dataclass(frozen=True)
class Result:
    """One benchmark figure against its floor.

    ``ratio`` is ``value / floor`` when lower is better (times), ``floor / value`` when
    higher is better (throughputs): either way, 1.0 is the floor and ``target`` the limit.
    """

    name: str
    value: float
    floor: float
    unit: str
    target: float
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.floor / self.value if self.value else float("inf")
        return self.value / self.floor if self.floor else float("inf")

    @property
    def ok(self) -> bool:
        return self.ratio <= self.target


def median_ns_per_op(fn: Callable[[int], None], loops: int, repeats: int = 7) -> float:
    """Return the median over ``repeats`` of the ns per iteration of ``fn(loops)``."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn(loops)
        samples.append((time.perf_counter_ns() - start) / loops)
    return statistics.median(samples)


def print_results(title: str, results: list[Result]) -> bool:
    """Print a table of results; return whether every one met its target."""
    print(f"\n== {title}")
    print(f"{'benchmark':<48} {'value':>12} {'floor':>12} {'ratio':>7} {'target':>7}")
    for r in results:
        mark = "ok" if r.ok else "MISSED"
        print(
            f"{r.name:<48} {r.value:>10.1f}{r.unit:<2} {r.floor:>10.1f}{r.unit:<2} "
            f"{r.ratio:>6.2f}x {r.target:>6.2f}x {mark}"
        )
    return all(r.ok for r in results)
