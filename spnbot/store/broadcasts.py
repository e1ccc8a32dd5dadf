"""Broadcast rows (progress that survives restarts) and the audience they page through."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.models import BROADCASTS, USERS

RUNNING = "running"
DONE = "done"


class Audience(enum.StrEnum):
    ALL = "all"
    ACTIVE = "active"  # subscription running when the admin sent it
    EXPIRED = "expired"  # had a subscription, and it had ended when the admin sent it


@dataclass(frozen=True)
class BroadcastRow:
    id: int
    created_by: int
    audience: Audience
    text: str
    status: str
    cursor: int  # last tg_id handled
    created_at: datetime


@dataclass(frozen=True)
class Totals:
    delivered: int
    blocked: int
    failed: int


@dataclass(frozen=True)
class Step:
    """One batch's outcome: the cursor moves from ``after`` to ``to``, the counts add up."""

    after: int
    to: int
    delivered: int
    blocked: int
    failed: int


def _totals(row: Row[Any] | None) -> Totals | None:
    if row is None:
        return None
    return Totals(int(row.delivered), int(row.blocked), int(row.failed))


class Broadcasts:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, created_by: int, audience: Audience, text: str, now: datetime) -> int:
        added = await self._session.execute(
            BROADCASTS.insert()
            .values(
                created_by=created_by,
                audience=str(audience),
                text=text,
                status=RUNNING,
                cursor=0,
                delivered=0,
                blocked=0,
                failed=0,
                created_at=now,
            )
            .returning(BROADCASTS.c.id)
        )
        return int(added.scalar_one())

    async def get(self, broadcast_id: int) -> BroadcastRow | None:
        row = (
            await self._session.execute(
                select(
                    BROADCASTS.c.id,
                    BROADCASTS.c.created_by,
                    BROADCASTS.c.audience,
                    BROADCASTS.c.text,
                    BROADCASTS.c.status,
                    BROADCASTS.c.cursor,
                    BROADCASTS.c.created_at,
                ).where(BROADCASTS.c.id == broadcast_id)
            )
        ).first()
        if row is None:
            return None
        return BroadcastRow(
            row.id,
            row.created_by,
            Audience(row.audience),
            row.text,
            row.status,
            row.cursor,
            row.created_at,
        )

    async def recipients(self, row: BroadcastRow, *, after: int, limit: int) -> list[int]:
        """The next ``limit`` reachable users of the audience past ``after``, in tg_id order."""
        stmt = (
            select(USERS.c.tg_id)
            .where(USERS.c.tg_id > after, USERS.c.blocked_at.is_(None))
            .order_by(USERS.c.tg_id)
            .limit(limit)
        )
        # Judged at the moment the admin sent it, not when the job reaches this page.
        if row.audience == Audience.ACTIVE:
            stmt = stmt.where(USERS.c.expires_at > row.created_at)
        elif row.audience == Audience.EXPIRED:
            stmt = stmt.where(USERS.c.expires_at.is_not(None), USERS.c.expires_at <= row.created_at)
        return [int(tg_id) for tg_id in (await self._session.execute(stmt)).scalars()]

    async def advance(self, broadcast_id: int, step: Step) -> Totals | None:
        """Moves a running broadcast's cursor and adds the counts: the new totals, or None when
        its cursor is no longer at ``step.after`` (compare-and-set: one runner per broadcast)."""
        moved = await self._session.execute(
            update(BROADCASTS)
            .where(
                BROADCASTS.c.id == broadcast_id,
                BROADCASTS.c.status == RUNNING,
                BROADCASTS.c.cursor == step.after,
            )
            .values(
                cursor=step.to,
                delivered=BROADCASTS.c.delivered + step.delivered,
                blocked=BROADCASTS.c.blocked + step.blocked,
                failed=BROADCASTS.c.failed + step.failed,
            )
            .returning(BROADCASTS.c.delivered, BROADCASTS.c.blocked, BROADCASTS.c.failed)
        )
        return _totals(moved.one_or_none())

    async def finish(self, broadcast_id: int, now: datetime) -> Totals | None:
        """The final totals, once: None when it was already done."""
        done = await self._session.execute(
            update(BROADCASTS)
            .where(BROADCASTS.c.id == broadcast_id, BROADCASTS.c.status == RUNNING)
            .values(status=DONE, finished_at=now)
            .returning(BROADCASTS.c.delivered, BROADCASTS.c.blocked, BROADCASTS.c.failed)
        )
        return _totals(done.one_or_none())
