"""Who invited whom, and whether the inviter got the bonus yet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.models import REFERRALS


class Referrals:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def reward_once(self, user_ids: Sequence[int], now: datetime) -> list[tuple[int, int]]:
        """Marks these referred users' referrals rewarded, once each: (referred, referrer)
        pairs for the ones this call marked, in a stable order."""
        if not user_ids:
            return []
        rewarded = await self._session.execute(
            update(REFERRALS)
            .where(REFERRALS.c.referred_id.in_(list(user_ids)), REFERRALS.c.rewarded_at.is_(None))
            .values(rewarded_at=now)
            .returning(REFERRALS.c.referred_id, REFERRALS.c.referrer_id)
        )
        return sorted((int(a), int(b)) for a, b in rewarded.all())

    async def add(self, referred_id: int, referrer_id: int, now: datetime) -> None:
        """A referred user has one referrer: a second one fails on the primary key."""
        await self._session.execute(
            REFERRALS.insert().values(
                referred_id=referred_id, referrer_id=referrer_id, created_at=now
            )
        )

    async def counts(self, referrer_id: int) -> tuple[int, int]:
        """(invited, rewarded) of one referrer."""
        invited, rewarded = (
            await self._session.execute(
                select(func.count(), func.count(REFERRALS.c.rewarded_at)).where(
                    REFERRALS.c.referrer_id == referrer_id
                )
            )
        ).one()
        return int(invited), int(rewarded)
