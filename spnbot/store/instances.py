"""Instance heartbeats: who is alive to run the jobs it holds."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.models import INSTANCES


async def register(session: AsyncSession, instance_id: str, now: datetime) -> None:
    await session.execute(
        INSTANCES.insert().values(id=instance_id, started_at=now, heartbeat_at=now)
    )


async def beat(session: AsyncSession, instance_id: str, now: datetime) -> bool:
    """False when our row is gone (pruned while we were stalled): the caller registers again."""
    done = await session.execute(
        update(INSTANCES).where(INSTANCES.c.id == instance_id).values(heartbeat_at=now)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def deregister(session: AsyncSession, instance_id: str) -> None:
    await session.execute(delete(INSTANCES).where(INSTANCES.c.id == instance_id))


async def prune(session: AsyncSession, now: datetime, *, older_than: timedelta) -> None:
    """Rows of instances long dead (their jobs were taken over long ago)."""
    await session.execute(delete(INSTANCES).where(INSTANCES.c.heartbeat_at < now - older_than))
