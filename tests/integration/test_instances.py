"""Instance heartbeats: a dead instance's running jobs are taken over at once, a live one's
are left alone, and a runner knows when to look again."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from spnbot.domain.expiry import utcnow
from spnbot.store import instances
from spnbot.store import jobs as queue
from spnbot.store.db import Database
from spnbot.store.jobs import DEAD_AFTER, Lease, NewJob
from spnbot.store.models import INSTANCES, JOBS

LEASE = timedelta(minutes=2)


async def _held_by(db: Database, owner: str, key: str) -> int:
    async with db.transaction() as session:
        [job] = await queue.enqueue_many(
            session, [NewJob("probe", {"k": key}, key)], claim_lease=Lease(owner, LEASE)
        )
    assert job is not None
    return job.id


async def test_jobs_of_a_dead_instance_are_taken_over_before_their_lease_ends(db: Database) -> None:
    now = utcnow()
    async with db.transaction() as session:
        await instances.register(session, "dead", now - DEAD_AFTER - timedelta(seconds=1))
        await instances.register(session, "alive", now)
    orphan = await _held_by(db, "dead", "a")
    await _held_by(db, "alive", "b")

    async with db.transaction() as session:
        claimed = await queue.claim(session, limit=10, lease=Lease("me", LEASE))
    assert [j.id for j in claimed] == [orphan]
    assert claimed[0].attempts == 2  # the dead instance's try counts
    async with db.transaction() as session:
        owner = (
            await session.execute(select(JOBS.c.locked_by).where(JOBS.c.id == orphan))
        ).scalar()
        assert owner == "me"
        assert await queue.claim(session, limit=10, lease=Lease("me", LEASE)) == []


async def test_a_runner_wakes_when_another_instance_would_be_dead(db: Database) -> None:
    now = utcnow()
    async with db.transaction() as session:
        await instances.register(session, "other", now)
        await instances.register(session, "me", now - timedelta(hours=1))  # ours never counts
    await _held_by(db, "other", "a")
    await _held_by(db, "me", "b")
    async with db.transaction() as session:
        due = await queue.next_due(session, me="me")
    assert due is not None
    assert abs((due - (now + DEAD_AFTER)).total_seconds()) < 0.01  # not the 2-minute lease


async def test_heartbeats_and_a_clean_exit(db: Database) -> None:
    now = utcnow()
    async with db.transaction() as session:
        await instances.register(session, "x", now)
        assert await instances.beat(session, "x", now + timedelta(seconds=2))
        assert not await instances.beat(session, "nobody", now)
        await instances.register(session, "old", now - timedelta(days=2))
        await instances.prune(session, now, older_than=timedelta(days=1))
        await instances.deregister(session, "x")
        left = (await session.execute(select(INSTANCES.c.id))).scalars().all()
    assert left == []
