"""Marks that say "this was sent": set once, kept until the thing they guard cannot recur."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import SENT_MARKS


async def mark_new(
    session: AsyncSession, marks: Sequence[tuple[str, datetime]], *, now: datetime
) -> set[str]:
    """Set each ``(key, keep_until)`` mark; returns the keys that were not set before.

    Atomic per key across instances (a primary key with ON CONFLICT DO NOTHING): of two scans
    racing for the same key, exactly one gets it back.
    """
    if not marks:
        return set()
    keys = [key for key, _ in marks]
    if len(set(keys)) != len(keys):
        raise ValueError("marks set together need distinct keys")
    stmt = (
        insert_ignoring_conflicts(session, SENT_MARKS)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(SENT_MARKS.c.key)
    )
    rows = [{"key": key, "keep_until": until, "created_at": now} for key, until in marks]
    return set((await session.execute(stmt, rows)).scalars())


class SentMarks:
    """The marks as a unit of work sees them."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def mark_new(self, marks: Sequence[tuple[str, datetime]], *, now: datetime) -> set[str]:
        return await mark_new(self._session, marks, now=now)
