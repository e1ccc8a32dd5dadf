"""Periodic passes shared by the instances on one database: each pass runs on one of them
per interval (several instances would otherwise each reconcile, back up and send digests)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import PERIODIC_RUNS

# Timers on different instances drift; a pass started a little less than one interval ago
# is due again, or a late timer would skip a whole interval.
DUE_AFTER = 0.9


async def take_turn(
    session: AsyncSession, name: str, instance_id: str, now: datetime, every: timedelta
) -> bool:
    """True when this instance is to run the pass ``name`` now: none started within about
    ``every``. A compare-and-set on one row, so of racing instances exactly one wins."""
    moved = await session.execute(
        update(PERIODIC_RUNS)
        .where(PERIODIC_RUNS.c.name == name, PERIODIC_RUNS.c.started_at <= now - every * DUE_AFTER)
        .values(started_at=now, started_by=instance_id)
        .returning(PERIODIC_RUNS.c.name)
    )
    if moved.first() is not None:
        return True
    created = await session.execute(
        insert_ignoring_conflicts(session, PERIODIC_RUNS)
        .values(name=name, started_at=now, started_by=instance_id)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(PERIODIC_RUNS.c.name)
    )
    return created.first() is not None
