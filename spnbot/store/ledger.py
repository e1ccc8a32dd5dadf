"""The grant ledger: one row per day grant, unique per (kind, source)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.states import GrantKind
from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import GRANTS


@dataclass(frozen=True)
class LedgerEntry:
    user_id: int
    kind: GrantKind
    source: str
    days: int
    previous_expiry: datetime | None
    new_expiry: datetime


class GrantLedger:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self, entries: Sequence[LedgerEntry], now: datetime
    ) -> dict[tuple[str, str], int]:
        """Insert the entries whose (kind, source) is new; returns their ids by (kind, source).

        A source that already granted is skipped by the unique index, not by a read first, so
        two racing grants of one source cannot both land.
        """
        if not entries:
            return {}
        inserted = await self._session.execute(
            insert_ignoring_conflicts(self._session, GRANTS)
            .on_conflict_do_nothing(index_elements=["kind", "source"])
            .returning(GRANTS.c.id, GRANTS.c.kind, GRANTS.c.source),
            [  # executemany: one multi-row INSERT from a statement compiled once
                {
                    "user_id": e.user_id,
                    "kind": e.kind,
                    "source": e.source,
                    "days": e.days,
                    "previous_expiry": e.previous_expiry,
                    "new_expiry": e.new_expiry,
                    "created_at": now,
                }
                for e in entries
            ],
        )
        return {(str(kind), source): grant_id for grant_id, kind, source in inserted}

    async def exists(self, kind: GrantKind, source: str) -> bool:
        found = await self._session.execute(
            select(GRANTS.c.id).where(GRANTS.c.kind == kind, GRANTS.c.source == source)
        )
        return found.first() is not None
