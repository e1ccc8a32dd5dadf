"""Pruning statements: done jobs, finished broadcasts, lapsed sent marks, one small batch each.

Every call deletes at most ``limit`` rows, so the caller's transaction (one per batch) holds
its row locks only briefly. The newest row of ``jobs`` and ``broadcasts`` is never deleted:
SQLite hands out ``max(id) + 1`` to the next row, so deleting the top row would reuse its id,
and dedup keys such as ``admin:jobfail:<job id>`` or ``broadcast:<id>`` name ids.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.states import JobStatus
from spnbot.store.models import BROADCASTS, JOBS, SENT_MARKS

BROADCAST_DONE = "done"


async def prune_done_jobs(
    session: AsyncSession, *, before: datetime, after_id: int, limit: int
) -> tuple[int, int | None]:
    """Delete done jobs last touched before ``before`` among the ``limit`` jobs after ``after_id``.

    Returns (deleted, cursor): the next call starts after ``cursor``; None when the scan has
    reached jobs created at or after ``before`` (nothing further can qualify). A keyset walk
    over the primary key: bounded work per batch and no index on the done rows, which would
    cost every job's completion an index write.
    """
    top = (await session.execute(select(func.max(JOBS.c.id)))).scalar()
    if top is None:
        return 0, None
    window = (
        select(JOBS.c.id, JOBS.c.status, JOBS.c.updated_at, JOBS.c.created_at)
        .where(JOBS.c.id > after_id, JOBS.c.id < top)
        .order_by(JOBS.c.id)
        .limit(limit)
    )
    rows = (await session.execute(window)).all()
    if not rows:
        return 0, None
    doomed = [r.id for r in rows if r.status == JobStatus.DONE and r.updated_at < before]
    deleted = 0
    if doomed:  # re-checked: only the rows deleted are locked, and only while this batch runs
        result = await session.execute(
            delete(JOBS).where(
                JOBS.c.id.in_(doomed),
                JOBS.c.status == JobStatus.DONE,
                JOBS.c.updated_at < before,
            )
        )
        deleted = int(result.rowcount or 0)  # type: ignore[attr-defined]
    last = rows[-1]
    finished = len(rows) < limit or last.created_at >= before
    return deleted, None if finished else last.id


async def prune_finished_broadcasts(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` broadcasts that finished before ``before``."""
    top = select(func.max(BROADCASTS.c.id)).scalar_subquery()
    doomed = (
        select(BROADCASTS.c.id)
        .where(
            BROADCASTS.c.status == BROADCAST_DONE,
            BROADCASTS.c.finished_at < before,
            BROADCASTS.c.id < top,
        )
        .order_by(BROADCASTS.c.id)
        .limit(limit)
    )
    result = await session.execute(delete(BROADCASTS).where(BROADCASTS.c.id.in_(doomed)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune_sent_marks(session: AsyncSession, *, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` marks whose guarded thing can no longer recur."""
    doomed = (
        select(SENT_MARKS.c.key)
        .where(SENT_MARKS.c.keep_until < now)
        .order_by(SENT_MARKS.c.keep_until)
        .limit(limit)
    )
    result = await session.execute(delete(SENT_MARKS).where(SENT_MARKS.c.key.in_(doomed)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def table_sizes(session: AsyncSession) -> dict[str, int]:
    """Row counts of the tables retention keeps bounded."""
    sizes = {}
    for table in (JOBS, BROADCASTS, SENT_MARKS):
        sizes[table.name] = int(
            (await session.execute(select(func.count()).select_from(table))).scalar_one()
        )
    return sizes


class Pruning:
    """The pruning statements as a unit of work offers them (one batch per transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def done_jobs(
        self, *, before: datetime, after_id: int, limit: int
    ) -> tuple[int, int | None]:
        return await prune_done_jobs(self._session, before=before, after_id=after_id, limit=limit)

    async def finished_broadcasts(self, *, before: datetime, limit: int) -> int:
        return await prune_finished_broadcasts(self._session, before=before, limit=limit)

    async def sent_marks(self, *, now: datetime, limit: int) -> int:
        return await prune_sent_marks(self._session, now=now, limit=limit)
