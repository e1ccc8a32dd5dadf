"""The one way days are added: absolute expiry, a ledger row per source, durable panel sync."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.expiry import extended_expiry
from spnbot.domain.states import GrantKind
from spnbot.jobs import queue
from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import Grant, User

PANEL_SYNC = "panel_sync"


@dataclass(frozen=True)
class GrantResult:
    grant_id: int
    previous_expiry: datetime | None
    new_expiry: datetime


async def grant_days(
    session: AsyncSession,
    *,
    user_id: int,
    days: int,
    kind: GrantKind,
    source: str,
    now: datetime,
    notify: str | None = None,
    notify_params: dict[str, object] | None = None,
) -> GrantResult | None:
    """Extend ``user_id`` by ``days`` once per (kind, source); None if that source already granted.

    Runs inside the caller's transaction: the new expiry, the ledger row and the panel-sync job
    commit together or not at all. ``notify`` names the template sent once the panel agrees.
    """
    # Row lock on PostgreSQL; SQLite transactions already hold the write lock (BEGIN IMMEDIATE).
    current = (
        await session.execute(
            select(User.expires_at).where(User.tg_id == user_id).with_for_update()
        )
    ).one_or_none()
    if current is None:
        raise LookupError(f"user {user_id} does not exist")
    previous = current[0]
    new_expiry = extended_expiry(now, previous, days)
    inserted = await session.execute(
        insert_ignoring_conflicts(session, Grant)
        .values(
            user_id=user_id,
            kind=kind,
            source=source,
            days=days,
            previous_expiry=previous,
            new_expiry=new_expiry,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["kind", "source"])
        .returning(Grant.id)
    )
    grant_id = inserted.scalar()
    if grant_id is None:
        return None
    await session.execute(update(User).where(User.tg_id == user_id).values(expires_at=new_expiry))
    await queue.enqueue(
        session,
        PANEL_SYNC,
        {
            "user_id": user_id,
            "grant_id": grant_id,
            "kind": str(kind),
            "days": days,
            "notify": notify,
            "notify_params": notify_params or {},
            "granted_at": now.isoformat(),
        },
        dedup_key=f"sync:grant:{grant_id}",
    )
    return GrantResult(grant_id, previous, new_expiry)
