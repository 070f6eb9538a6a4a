"""Streamed runs: a run's target partitions a page at a time, ``concurrency`` at once.

:func:`stream` yields the steps of every target partition a run asks for (a range, only the
missing ones); :class:`Backfill` plans them a page (:data:`PAGE`) at a time and runs them,
what the page's partitions share first, then each partition's own steps on a pool. The
first failed partition stops the dispatch of new ones; those in flight finish, and the
error is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..partitions import partition_key
from ..registry import Snapshot
from . import partitioning
from .plan import Step, plan
from .steps import NONE_KEY, Run

__all__ = ["PAGE", "Backfill", "stream"]

#: Partitions of a streamed run planned at once.
PAGE = 256


def stream(
    snapshot: Snapshot, streams: list[tuple[Any, tuple[int, int] | None, bool]]
) -> Iterator[Step]:
    """Yield the steps of each stream's target partitions, ``(asset, positions, only
    missing)``: those in the positions (all when ``None``), only those its IO manager
    does not store yet when asked."""
    for asset, span, only_missing in streams:
        values: Iterable[Any] = partitioning.select(asset, span)
        if only_missing:
            values = partitioning.missing(snapshot, asset, values)
        for value in values:
            yield asset.name, value


def _pages(steps: Iterator[Step], size: int) -> Iterator[list[Step]]:
    page: list[Step] = []
    for step in steps:
        page.append(step)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


@dataclass
class Backfill:
    """Runs streamed targets a page at a time, ``concurrency`` partitions at once.

    Each page is planned; the steps before the last one that no target partition of the
    page owns (what the partitions share) run first on the run's own thread, then the
    rest, grouped by partition, run on a pool, each worker thread with its own
    :class:`Run` of the same run. A group's steps are forgotten once it is done, so a
    million partitions hold no more memory than a page.
    """

    run: Run
    concurrency: int
    count: int = 0
    workers: list[Run] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def execute(self, targets: Iterator[Step]) -> None:
        """Run the steps of ``targets`` and all they read; raise the first error."""
        if self.concurrency == 1:
            for page in _pages(targets, PAGE):
                for group in self._split(page, set()):
                    self._group(self.run, group)
            return
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="flowstone-part") as pool:
            in_flight: set[Future[None]] = set()
            try:
                for page in _pages(targets, PAGE):
                    for group in self._split(page, in_flight):
                        while len(in_flight) >= self.concurrency:
                            in_flight = _settle(in_flight, FIRST_COMPLETED)[1]
                        in_flight.add(pool.submit(self._on_worker, group))
                _settle(in_flight, None)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                wait(in_flight)
                raise

    def _split(self, page: list[Step], in_flight: set[Future[None]]) -> list[list[Step]]:
        """Run what the page's partitions share; return the rest, grouped by partition."""
        self.count += len(page)
        steps = plan(self.run.snapshot.assets, page)
        owned = {_key(p) for _, p in page}
        if owned == {NONE_KEY} and all(p is None for _, p in steps):
            return [steps]  # unpartitioned through and through: one group, nothing shared
        keyed = [(name, p, _key(p)) for name, p in steps]
        cut = 1 + max((i for i, (_, _, key) in enumerate(keyed) if key not in owned), default=-1)
        shared = [(name, key) for name, _, key in keyed[:cut]]
        if any(step not in self.run.finished for step in shared):
            _settle(in_flight, None)  # what they share may read what is in flight
            in_flight.clear()
            self._group(self.run, [(name, p) for name, p, _ in keyed[:cut]], forget=False)
        groups: dict[str, list[Step]] = {}
        for name, p, key in keyed[cut:]:
            groups.setdefault(key, []).append((name, p))
        return list(groups.values())

    def _on_worker(self, group: list[Step]) -> None:
        run = getattr(self._local, "run", None)
        if run is None:
            run = Run(
                self.run.run_id,
                self.run.snapshot,
                self.run.policy,
                self.run.records,
                self.run.progress,
                self.run.force,
                cancelled=self.run.cancelled,
            )
            self._local.run = run
            with self._lock:
                self.workers.append(run)
        self._group(run, group)

    @staticmethod
    def _group(run: Run, group: list[Step], *, forget: bool = True) -> None:
        assets = run.snapshot.assets
        try:
            for name, partition in group:
                run.step(assets.resolve(name), partition)
        finally:
            if forget:
                run.finished.difference_update(
                    [(n, NONE_KEY if p is None else partition_key(p)) for n, p in group]
                )

    def flush(self) -> None:
        """Write every buffered step record, the workers' too."""
        for run in [self.run, *self.workers]:
            run.flush()


def _key(partition: Any) -> str:
    return NONE_KEY if partition is None else partition_key(partition)


def _settle(
    futures: set[Future[None]], when: str | None
) -> tuple[set[Future[None]], set[Future[None]]]:
    """Wait for one (``FIRST_COMPLETED``) or all (``None``) of ``futures``; raise the
    first error among those done, after waiting for the rest."""
    if when is None:
        done, pending = wait(futures)
    else:
        done, pending = wait(futures, return_when=when)
    for future in done:
        error = future.exception()
        if error is not None:
            wait(pending)
            raise error
    return done, pending
