"""Group commit on a real database: batches form under load, results stay per caller, one bad
item fails only itself, and set-based grants equal the same grants one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.states import GrantKind
from spnbot.services.grants import GrantConflict, GrantRequest, grant_days, grant_many
from spnbot.store.db import Database
from spnbot.store.group_commit import GroupCommit
from spnbot.store.jobs import Lease
from spnbot.store.models import Grant, Job, User
from spnbot.store.uow import Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def add_users(db: Database, *ids: int, expires: datetime | None = None) -> None:
    async with db.transaction() as session:
        for uid in ids:
            session.add(User(tg_id=uid, language="ru", created_at=NOW, expires_at=expires))


async def test_concurrent_items_share_transactions_and_get_their_own_results(
    db: Database,
) -> None:
    await add_users(db, *range(1, 41))
    batch_sizes: list[int] = []

    async def flush(session: AsyncSession, ids: Sequence[int]) -> list[str | None]:
        batch_sizes.append(len(ids))
        rows = await session.execute(select(User.tg_id, User.language).where(User.tg_id.in_(ids)))
        found = dict(rows.all())
        return [found.get(uid) for uid in ids]

    group = GroupCommit(db, flush, name="test")
    results = await asyncio.gather(*(group.submit(uid) for uid in [*range(1, 41), 999]))
    await group.aclose()
    assert results == ["ru"] * 40 + [None]
    assert sum(batch_sizes) == 41
    assert len(batch_sizes) < 41, batch_sizes  # they did share transactions


async def test_a_failing_item_fails_alone_and_rolls_back_only_its_own_work(db: Database) -> None:
    await add_users(db, 1, 2, 3)

    async def flush(session: AsyncSession, ids: Sequence[int]) -> list[int]:
        for uid in ids:
            if uid == 2:
                raise ValueError("item 2 is bad")
            await session.execute(
                User.__table__.update().where(User.tg_id == uid).values(language="en")
            )
        return list(ids)

    group = GroupCommit(db, flush, name="test")
    results = await asyncio.gather(
        *(group.submit(uid) for uid in (1, 2, 3)), return_exceptions=True
    )
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError)
    async with db.transaction() as session:
        languages = dict((await session.execute(select(User.tg_id, User.language))).all())
    assert languages == {1: "en", 2: "ru", 3: "en"}


async def test_grant_many_stacks_like_grants_one_at_a_time(db: Database) -> None:
    running = NOW + timedelta(days=10)
    await add_users(db, 1, 2)
    await add_users(db, 3, expires=running)
    requests = [
        GrantRequest(1, 30, GrantKind.PAYMENT, "p1"),
        GrantRequest(3, 30, GrantKind.PAYMENT, "p3"),
        GrantRequest(1, 90, GrantKind.PAYMENT, "p1b"),
        GrantRequest(2, 7, GrantKind.GIFT, "2"),
    ]
    async with Store(db).transaction() as tx:
        results = await grant_many(
            tx, requests, now=NOW, claim_lease=Lease("test", timedelta(minutes=1))
        )
    assert [r.new_expiry if r else None for r in results] == [
        NOW + timedelta(days=30),
        running + timedelta(days=30),
        NOW + timedelta(days=120),
        NOW + timedelta(days=7),
    ]
    assert all(r and r.sync_job and r.sync_job.attempts == 1 for r in results)
    async with db.transaction() as session:
        expiry = dict((await session.execute(select(User.tg_id, User.expires_at))).all())
        jobs = (await session.execute(select(Job.status, func.count()).group_by(Job.status))).all()
    assert expiry == {
        1: NOW + timedelta(days=120),
        2: NOW + timedelta(days=7),
        3: running + timedelta(days=30),
    }
    assert jobs == [("running", 4)]  # claimed for the caller, who runs them at once

    # The same source again: alone it is a no-op; in a batch it asks to be redone one by one.
    async with Store(db).transaction() as tx:
        again = await grant_days(tx, GrantRequest(1, 30, GrantKind.PAYMENT, "p1"), now=NOW)
    assert again is None
    with pytest.raises(GrantConflict):
        async with Store(db).transaction() as tx:
            await grant_many(
                tx,
                [
                    GrantRequest(1, 30, GrantKind.PAYMENT, "p1"),
                    GrantRequest(1, 5, GrantKind.GIFT, "1"),
                ],
                now=NOW,
            )
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Grant)) == 4
        assert await session.scalar(select(User.expires_at).where(User.tg_id == 1)) == NOW + (
            timedelta(days=120)
        )
