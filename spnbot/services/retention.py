"""Keeps the bookkeeping tables bounded: done jobs, finished broadcasts and lapsed sent marks.

Exactly-once never rests on a done job still existing: the reminders' de-duplication lives in
``sent_marks`` (kept until the reminder can no longer come due), and every other dedup key is
guarded by a state change on a row that is never pruned (see tests/unit/test_dedup_inventory.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from spnbot.domain.expiry import utcnow
from spnbot.store.group_commit import Transactional
from spnbot.store.retention import Pruning
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)

# (rows deleted, where the next batch starts or None)
_Step = tuple[int, int | None]

# Rows per transaction: a few milliseconds of locks on PostgreSQL and of SQLite's write lock.
BATCH = 500
# Between batches, so payments and job claims get the database in between.
PAUSE = 0.05


@dataclass
class RetentionReport:
    jobs: int = 0
    broadcasts: int = 0
    sent_marks: int = 0
    batches: int = 0
    largest_batch: int = 0  # rows deleted by the biggest single transaction
    longest_batch: float = 0.0  # seconds of the slowest single transaction
    batch_sizes: list[int] = field(default_factory=list)

    @property
    def deleted(self) -> int:
        return self.jobs + self.broadcasts + self.sent_marks

    def __bool__(self) -> bool:  # the app's periodic loop logs a pass only when it did something
        return self.deleted > 0

    def __str__(self) -> str:
        return (
            f"pruned {self.jobs} jobs, {self.broadcasts} broadcasts, {self.sent_marks} sent marks"
            f" in {self.batches} batches (longest {self.longest_batch * 1000:.0f} ms)"
        )


class RetentionService:
    def __init__(
        self,
        store: Transactional[Tx],
        *,
        days: int = 30,
        batch: int = BATCH,
        pause: float = PAUSE,
        clock: Callable[[], datetime] = utcnow,
        sleeper: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if days < 1:
            raise ValueError("retention must keep at least one day")
        if batch < 1:
            raise ValueError("batch must be positive")
        self._store = store
        self._keep = timedelta(days=days)
        self._limit = batch
        self._pause = pause
        self._clock = clock
        self._sleep = sleeper

    async def run_once(self) -> RetentionReport:
        """One pass over every table, batch by batch; safe to run from several instances."""
        now = self._clock()
        before = now - self._keep
        report = RetentionReport()
        cursor: int | None = 0
        while cursor is not None:
            deleted, cursor = await self._batch(
                report,
                partial(Pruning.done_jobs, before=before, after_id=cursor, limit=self._limit),
            )
            report.jobs += deleted
        prune_broadcasts = partial(Pruning.finished_broadcasts, before=before, limit=self._limit)
        deleted = self._limit
        while deleted == self._limit:  # a short batch was the last one
            deleted = (await self._batch(report, _counted(prune_broadcasts)))[0]
            report.broadcasts += deleted
        prune_marks = partial(Pruning.sent_marks, now=now, limit=self._limit)
        deleted = self._limit
        while deleted == self._limit:
            deleted = (await self._batch(report, _counted(prune_marks)))[0]
            report.sent_marks += deleted
        if report:
            log.info("retention: %s", report)
        return report

    async def _batch(
        self, report: RetentionReport, work: Callable[[Pruning], Awaitable[_Step]]
    ) -> _Step:
        """One transaction, timed; then a short pause if it deleted anything."""
        started = time.perf_counter()
        async with self._store.transaction() as tx:
            result = await work(tx.retention)
        report.longest_batch = max(report.longest_batch, time.perf_counter() - started)
        deleted = result[0]
        report.batches += 1
        report.batch_sizes.append(deleted)
        report.largest_batch = max(report.largest_batch, deleted)
        if deleted and self._pause:
            await self._sleep(self._pause)
        return result


def _counted(
    work: Callable[[Pruning], Awaitable[int]],
) -> Callable[[Pruning], Awaitable[_Step]]:
    async def run(pruning: Pruning) -> _Step:
        return await work(pruning), None

    return run
