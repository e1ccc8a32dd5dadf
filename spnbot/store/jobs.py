"""The job outbox repository: enqueue inside the caller's transaction, claim, finish, retry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.backoff import backoff
from spnbot.domain.expiry import utcnow
from spnbot.domain.states import JobStatus
from spnbot.store.dialect import insert_ignoring_conflicts, is_postgres
from spnbot.store.models import INSTANCES, JOBS

NOTIFY_CHANNEL = "spn_jobs"
DEFAULT_MAX_ATTEMPTS = 12  # with the capped backoff: about 50 minutes of attempts

# The queue is the hottest path: Core statements on JOBS, not ORM-enabled ones.


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including this one
    max_attempts: int


# An instance whose heartbeat is older than this is dead: its running jobs are taken over.
# Heartbeats go out every 1.5 s, so a live instance is never mistaken for a dead one unless its
# database writes stall for several seconds (then a job may run twice: every job is safe to
# repeat, and the customer's activation message is the only thing a repeat can show).
DEAD_AFTER = timedelta(seconds=5)


@dataclass(frozen=True)
class Lease:
    """Who runs a claimed job, and until when another runner must leave it alone."""

    owner: str  # the instance id
    duration: timedelta


@dataclass(frozen=True)
class NewJob:
    kind: str
    payload: dict[str, Any]
    dedup_key: str | None = None
    delay: timedelta | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


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
    added = await enqueue_many(session, [NewJob(kind, payload, dedup_key, delay, max_attempts)])
    return added[0] is not None


async def enqueue_many(
    session: AsyncSession, jobs: Sequence[NewJob], *, claim_lease: Lease | None = None
) -> list[ClaimedJob | None]:
    """Add several jobs in one statement; per job, what was added (None: dedup key taken).

    ``claim_lease``: the jobs go in already claimed by the caller, who runs them at once
    (``JobRunner.adopt``) without a claim round trip; should it die, the lease runs out and
    any runner takes them over. Unclaimed jobs due now wake the runners (one NOTIFY per call).
    """
    if not jobs:
        return []
    if len(jobs) > 1 and len({job.dedup_key for job in jobs if job.dedup_key}) != len(jobs):
        raise ValueError("jobs enqueued together need distinct dedup keys")
    now = utcnow()
    claimed = claim_lease is not None
    rows = [
        {
            "kind": job.kind,
            "payload": job.payload,
            "dedup_key": job.dedup_key,
            "status": JobStatus.RUNNING if claimed else JobStatus.PENDING,
            "attempts": 1 if claimed else 0,
            "max_attempts": job.max_attempts,
            "run_after": now + (job.delay or timedelta(0)),
            "locked_until": now + claim_lease.duration if claim_lease is not None else None,
            "locked_by": claim_lease.owner if claim_lease is not None else None,
            "created_at": now,
            "updated_at": now,
        }
        for job in jobs
    ]
    # Parameters as a list (executemany): SQLAlchemy sends one multi-row INSERT from a statement
    # it compiles once, where ``.values(rows)`` would compile a new one for every batch size.
    stmt = (
        insert_ignoring_conflicts(session, JOBS)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(JOBS.c.id, JOBS.c.dedup_key)
    )
    returned = (await session.execute(stmt, rows)).all()
    ids = {key: job_id for job_id, key in returned}
    if len(jobs) == 1 and returned:
        ids = {jobs[0].dedup_key: returned[0][0]}
    added: list[ClaimedJob | None] = []
    for job in jobs:
        job_id = ids.get(job.dedup_key)
        added.append(
            None
            if job_id is None
            else ClaimedJob(job_id, job.kind, job.payload, int(claimed), job.max_attempts)
        )
    # Only jobs due now wake the runners. A delayed one is found by a runner's next look at the
    # queue (at the latest after its idle poll), so a burst of delayed admin notices does not
    # make every runner run a claim per commit.
    woken = 0
    if not claimed:
        woken = sum(1 for job in jobs if ids.get(job.dedup_key) and not job.delay)
    if woken and is_postgres(session):
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    session.info["jobs_enqueued"] = session.info.get("jobs_enqueued", 0) + woken
    return added


async def claim(
    session: AsyncSession, *, limit: int, lease: Lease, kinds: list[str] | None = None
) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs, including ones whose runner died: its lease ran out, or
    its instance's heartbeat stopped (``DEAD_AFTER``), whichever comes first.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets several instances claim side by side.
    SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so claims are serial.
    """
    now = utcnow()
    ids: list[int] = []
    # Two narrow queries instead of one OR: each walks its own partial index in queue order
    # and stops after ``limit`` rows, however long the backlog (an OR would read and sort it).
    for due in (
        (JOBS.c.status == JobStatus.PENDING) & (JOBS.c.run_after <= now),
        # A runner died mid-lease:
        (JOBS.c.status == JobStatus.RUNNING) & (JOBS.c.locked_until < now),
        # An instance stopped beating (kill -9, a crashed host): no need to wait for its lease.
        (JOBS.c.status == JobStatus.RUNNING)
        & JOBS.c.locked_by.in_(
            select(INSTANCES.c.id).where(INSTANCES.c.heartbeat_at < now - DEAD_AFTER)
        ),
    ):
        if len(ids) >= limit:
            break
        stmt = select(JOBS.c.id).where(due).order_by(JOBS.c.run_after, JOBS.c.id)
        stmt = stmt.limit(limit - len(ids))
        if kinds:
            stmt = stmt.where(JOBS.c.kind.in_(kinds))
        ids += (await session.execute(stmt.with_for_update(skip_locked=True))).scalars()
    if not ids:
        return []
    rows = await session.execute(
        update(JOBS)
        .where(JOBS.c.id.in_(ids))
        .values(
            status=JobStatus.RUNNING,
            attempts=JOBS.c.attempts + 1,
            locked_until=now + lease.duration,
            locked_by=lease.owner,
            updated_at=now,
        )
        .returning(JOBS.c.id, JOBS.c.kind, JOBS.c.payload, JOBS.c.attempts, JOBS.c.max_attempts)
    )
    return [ClaimedJob(*row) for row in rows]


async def finish(session: AsyncSession, job_id: int) -> None:
    await finish_many(session, [job_id])


async def finish_many(session: AsyncSession, job_ids: Sequence[int]) -> None:
    if not job_ids:
        return
    await session.execute(
        update(JOBS)
        .where(JOBS.c.id.in_(job_ids))
        .values(status=JobStatus.DONE, locked_until=None, last_error=None, updated_at=utcnow())
    )


async def fail(session: AsyncSession, job: ClaimedJob, error: str) -> bool:
    """Record a failed attempt; returns True when the job has now given up for good."""
    gave_up = job.attempts >= job.max_attempts
    await session.execute(
        update(JOBS)
        .where(JOBS.c.id == job.id)
        .values(
            status=JobStatus.FAILED if gave_up else JobStatus.PENDING,
            run_after=utcnow() + backoff(job.attempts),
            locked_until=None,
            last_error=error[:2000],
            updated_at=utcnow(),
        )
    )
    return gave_up


async def next_due(session: AsyncSession, *, me: str | None = None) -> datetime | None:
    """When the earliest waiting job becomes due (for the runner's sleep): a pending job's
    time, a lease running out, or another instance holding jobs being declared dead."""
    pending = select(func.min(JOBS.c.run_after)).where(JOBS.c.status == JobStatus.PENDING)
    leased = select(func.min(JOBS.c.locked_until)).where(JOBS.c.status == JobStatus.RUNNING)
    holders = select(JOBS.c.locked_by).where(JOBS.c.status == JobStatus.RUNNING)
    owners = select(func.min(INSTANCES.c.heartbeat_at)).where(
        INSTANCES.c.id.in_(holders), INSTANCES.c.id != (me or "")
    )
    last_beat = (await session.execute(owners)).scalar()
    times = [
        (await session.execute(pending)).scalar(),
        (await session.execute(leased)).scalar(),
        last_beat + DEAD_AFTER if last_beat is not None else None,
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(JOBS.c.status, func.count()).group_by(JOBS.c.status))
    return {status: n for status, n in rows.all()}


async def extend_lease(session: AsyncSession, job_id: int, lease: timedelta) -> None:
    """A long job (a broadcast) says it is alive, so no other runner reclaims it."""
    now = utcnow()
    await session.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status == JobStatus.RUNNING)
        .values(locked_until=now + lease, updated_at=now)
    )


async def release_others(session: AsyncSession, me: str) -> int:
    """Hand back every running job another instance holds: for a runner that knows it is the
    only one (SQLite allows one process), whatever another instance held was orphaned."""
    now = utcnow()
    released = await session.execute(
        update(JOBS)
        .where(
            JOBS.c.status == JobStatus.RUNNING,
            or_(JOBS.c.locked_by.is_(None), JOBS.c.locked_by != me),
        )
        .values(status=JobStatus.PENDING, run_after=now, locked_until=None, locked_by=None)
        .returning(JOBS.c.id)
    )
    return len(released.all())


async def release(session: AsyncSession, job_id: int) -> None:
    """Hand a job interrupted by a shutdown back at once, without counting the attempt."""
    now = utcnow()
    await session.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.PENDING,
            run_after=now,
            locked_until=None,
            locked_by=None,
            attempts=JOBS.c.attempts - 1,
            updated_at=now,
        )
    )


class JobOutbox:
    """The outbox as a unit of work sees it: jobs written in that transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        dedup_key: str | None = None,
        delay: timedelta | None = None,
    ) -> bool:
        return await enqueue(self._session, kind, payload, dedup_key=dedup_key, delay=delay)

    async def add_many(
        self, jobs: Sequence[NewJob], *, claim_lease: Lease | None = None
    ) -> list[ClaimedJob | None]:
        return await enqueue_many(self._session, jobs, claim_lease=claim_lease)

    async def finish_many(self, job_ids: Sequence[int]) -> None:
        await finish_many(self._session, job_ids)

    async def extend_lease(self, job_id: int, lease: timedelta) -> None:
        await extend_lease(self._session, job_id, lease)

    async def release(self, job_id: int) -> None:
        await release(self._session, job_id)
