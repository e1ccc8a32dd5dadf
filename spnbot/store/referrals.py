"""Who invited whom, and whether the inviter got the bonus yet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.store.models import Referral


class Referrals:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def reward_once(self, user_ids: Sequence[int], now: datetime) -> list[tuple[int, int]]:
        """Marks these referred users' referrals rewarded, once each: (referred, referrer)
        pairs for the ones this call marked, in a stable order."""
        if not user_ids:
            return []
        rewarded = await self._session.execute(
            update(Referral)
            .where(Referral.referred_id.in_(list(user_ids)), Referral.rewarded_at.is_(None))
            .values(rewarded_at=now)
            .returning(Referral.referred_id, Referral.referrer_id)
        )
        return sorted((int(a), int(b)) for a, b in rewarded.all())
