"""Promo codes and their redemptions, as a customer redeems them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import PROMO_CODES, PROMO_REDEMPTIONS


@dataclass(frozen=True)
class PromoRow:
    code: str
    days: int
    max_uses: int
    used_count: int
    expires_at: datetime | None
    active: bool


class Promos:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        code: str,
        *,
        days: int,
        max_uses: int,
        expires_at: datetime | None,
        created_by: int,
        now: datetime,
    ) -> bool:
        """A new code; False when it exists (an existing code is never silently reset)."""
        inserted = await self._session.execute(
            insert_ignoring_conflicts(self._session, PROMO_CODES)
            .values(
                code=code,
                days=days,
                max_uses=max_uses,
                used_count=0,
                expires_at=expires_at,
                active=True,
                created_by=created_by,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["code"])
            .returning(PROMO_CODES.c.code)
        )
        return inserted.scalar() is not None

    async def get(self, code: str) -> PromoRow | None:
        row = (
            await self._session.execute(
                select(
                    PROMO_CODES.c.code,
                    PROMO_CODES.c.days,
                    PROMO_CODES.c.max_uses,
                    PROMO_CODES.c.used_count,
                    PROMO_CODES.c.expires_at,
                    PROMO_CODES.c.active,
                ).where(PROMO_CODES.c.code == code)
            )
        ).first()
        return PromoRow(*row) if row is not None else None

    async def claim(self, code: str, user_id: int, now: datetime) -> bool:
        """The user's one redemption of the code; False when they already have it. The unique
        (code, user) index decides: a concurrent second try waits for the first (PostgreSQL)
        or behind the write lock (SQLite), then finds the row."""
        claimed = await self._session.execute(
            insert_ignoring_conflicts(self._session, PROMO_REDEMPTIONS)
            .values(code=code, user_id=user_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["code", "user_id"])
            .returning(PROMO_REDEMPTIONS.c.id)
        )
        return claimed.scalar() is not None

    async def take_use(self, code: str, now: datetime) -> int | None:
        """One use of an active, unexpired code under its limit: its days; None when refused.

        A compare-and-set on the counter, so racing redemptions never pass ``max_uses``.
        """
        taken = await self._session.execute(
            update(PROMO_CODES)
            .where(
                PROMO_CODES.c.code == code,
                PROMO_CODES.c.active.is_(True),
                PROMO_CODES.c.used_count < PROMO_CODES.c.max_uses,
                or_(PROMO_CODES.c.expires_at.is_(None), PROMO_CODES.c.expires_at > now),
            )
            .values(used_count=PROMO_CODES.c.used_count + 1)
            .returning(PROMO_CODES.c.days)
        )
        days = taken.scalar()
        return int(days) if days is not None else None
