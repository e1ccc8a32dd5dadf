"""Periodic passes take turns across instances on one database: a pass started within about
one interval is not started again, whoever asks; racing instances start it once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from spnbot.config import database_url_to_sqlalchemy
from spnbot.store import migrate, periodic
from spnbot.store.db import Database
from spnbot.store.models import PERIODIC_RUNS

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


async def turn(db: Database, instance: str, at: datetime, name: str = "reconciler") -> bool:
    async with db.transaction() as session:
        return await periodic.take_turn(session, name, instance, at, HOUR)


async def started(db: Database) -> dict[str, tuple[datetime, str]]:
    async with db.transaction() as session:
        rows = await session.execute(select(PERIODIC_RUNS))
        return {r.name: (r.started_at, r.started_by) for r in rows}


async def test_one_pass_per_interval_whoever_asks(db: Database) -> None:
    assert await turn(db, "a", NOW)  # the first pass ever
    assert not await turn(db, "b", NOW + timedelta(seconds=1))
    assert not await turn(db, "a", NOW + HOUR * 0.89)  # a restart of "a" too
    assert await turn(db, "b", NOW + HOUR * 0.9)  # timers drift: nearly an interval is enough
    assert not await turn(db, "a", NOW + HOUR)
    assert (await started(db))["reconciler"] == (NOW + HOUR * 0.9, "b")


async def test_passes_are_independent_of_each_other(db: Database) -> None:
    assert await turn(db, "a", NOW, "reconciler")
    assert await turn(db, "b", NOW, "reminders")
    assert not await turn(db, "b", NOW, "reconciler")
    assert set(await started(db)) == {"reconciler", "reminders"}


@pytest.mark.parametrize("seeded", [False, True], ids=["first-ever", "due-again"])
async def test_racing_instances_start_a_pass_once(pg_database_url: str, seeded: bool) -> None:
    db = Database(database_url_to_sqlalchemy(pg_database_url))
    try:
        await migrate.upgrade(db)
        if seeded:
            assert await turn(db, "earlier", NOW - HOUR)
        results = await asyncio.gather(*(turn(db, f"i{n}", NOW) for n in range(12)))
        assert sum(results) == 1
        winner = f"i{results.index(True)}"
        assert (await started(db))["reconciler"] == (NOW, winner)
    finally:
        await db.dispose()
