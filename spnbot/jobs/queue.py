"""The durable jobs table: enqueue inside the caller's transaction, claim, finish, retry."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.expiry import utcnow
from spnbot.domain.states import JobStatus
from spnbot.store.dialect import insert_ignoring_conflicts, is_postgres
from spnbot.store.models import Job

NOTIFY_CHANNEL = "spn_jobs"
DEFAULT_MAX_ATTEMPTS = 12  # with capped backoff: keeps trying for about a day


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including this one
    max_attempts: int


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    dedup_key: str | None = None,
    delay: timedelta | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> bool:
    """Add a job in the caller's transaction; False when ``dedup_key`` was already used.

    On PostgreSQL a NOTIFY goes out with the commit, waking runners in every instance.
    """
    now = utcnow()
    stmt = (
        insert_ignoring_conflicts(session, Job)
        .values(
            kind=kind,
            payload=payload,
            dedup_key=dedup_key,
            status=JobStatus.PENDING,
            attempts=0,
            max_attempts=max_attempts,
            run_after=now + (delay or timedelta(0)),
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(Job.id)
    )
    added = (await session.execute(stmt)).scalar() is not None
    if added and is_postgres(session):
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    session.info["jobs_enqueued"] = session.info.get("jobs_enqueued", 0) + int(added)
    return added


async def claim(
    session: AsyncSession, *, limit: int, lease: timedelta, kinds: list[str] | None = None
) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs, including ones whose runner died mid-lease.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets several instances claim side by side.
    SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so claims are serial.
    """
    now = utcnow()
    due = or_(
        and_(Job.status == JobStatus.PENDING, Job.run_after <= now),
        and_(Job.status == JobStatus.RUNNING, Job.locked_until < now),
    )
    candidates = select(Job.id).where(due).order_by(Job.run_after, Job.id).limit(limit)
    if kinds:
        candidates = candidates.where(Job.kind.in_(kinds))
    candidates = candidates.with_for_update(skip_locked=True)
    ids = list((await session.execute(candidates)).scalars())
    if not ids:
        return []
    rows = await session.execute(
        update(Job)
        .where(Job.id.in_(ids))
        .values(
            status=JobStatus.RUNNING,
            attempts=Job.attempts + 1,
            locked_until=now + lease,
            updated_at=now,
        )
        .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts)
    )
    return [ClaimedJob(*row) for row in rows]


async def finish(session: AsyncSession, job_id: int) -> None:
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status=JobStatus.DONE, locked_until=None, last_error=None, updated_at=utcnow())
    )


def backoff(attempt: int) -> timedelta:
    """2, 4, 8 … seconds, capped at 10 minutes, with jitter so retries do not stampede."""
    base = min(2.0**attempt, 600.0)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))


async def fail(session: AsyncSession, job: ClaimedJob, error: str) -> bool:
    """Record a failed attempt; returns True when the job has now given up for good."""
    gave_up = job.attempts >= job.max_attempts
    await session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(
            status=JobStatus.FAILED if gave_up else JobStatus.PENDING,
            run_after=utcnow() + backoff(job.attempts),
            locked_until=None,
            last_error=error[:2000],
            updated_at=utcnow(),
        )
    )
    return gave_up


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest waiting job becomes due (for the runner's sleep)."""
    pending = select(func.min(Job.run_after)).where(Job.status == JobStatus.PENDING)
    leased = select(func.min(Job.locked_until)).where(Job.status == JobStatus.RUNNING)
    times = [
        (await session.execute(pending)).scalar(),
        (await session.execute(leased)).scalar(),
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: n for status, n in rows.all()}


async def extend_lease(session: AsyncSession, job_id: int, lease: timedelta) -> None:
    """A long job (a broadcast) says it is alive, so no other runner reclaims it."""
    now = utcnow()
    await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        .values(locked_until=now + lease, updated_at=now)
    )


async def release(session: AsyncSession, job_id: int) -> None:
    """Hand a job interrupted by a shutdown back at once, without counting the attempt."""
    now = utcnow()
    await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.PENDING,
            run_after=now,
            locked_until=None,
            attempts=Job.attempts - 1,
            updated_at=now,
        )
    )
