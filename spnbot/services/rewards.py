"""Free days: the channel gift, promo codes, and the referral link's numbers."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from spnbot.domain.expiry import utcnow
from spnbot.domain.states import GrantKind
from spnbot.services.grants import GrantRequest, GrantResult, grant_days
from spnbot.store.db import Database
from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import Grant, PromoCode, PromoRedemption, Referral
from spnbot.store.uow import Tx


class GiftResult(enum.StrEnum):
    GRANTED = "granted"
    ALREADY = "already"
    NOT_SUBSCRIBED = "not_subscribed"
    UNAVAILABLE = "unavailable"  # no channel configured, or Telegram could not tell us


class PromoResult(enum.StrEnum):
    GRANTED = "granted"
    UNKNOWN = "unknown"
    INACTIVE = "inactive"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"
    ALREADY_USED = "already_used"


@dataclass(frozen=True)
class Redemption:
    result: PromoResult
    days: int = 0
    grant: GrantResult | None = None


@dataclass(frozen=True)
class ReferralStats:
    invited: int
    activated: int  # invited users whose first payment was confirmed


class _Abort(Exception):
    """Rolls back the redemption transaction and carries the reason out."""

    def __init__(self, result: PromoResult) -> None:
        self.result = result


CODE_MAX_LENGTH = 32  # promo_codes.code


def normalize_code(code: str) -> str:
    return code.strip().upper()


def is_plausible_code(code: str) -> bool:
    """What could be a stored code: short and printable (no NUL, which PostgreSQL refuses)."""
    return 0 < len(code) <= CODE_MAX_LENGTH and code.isprintable()


class RewardsService:
    def __init__(
        self, db: Database, *, gift_days: int, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self._gift_days = gift_days
        self._clock = clock

    @property
    def gift_days(self) -> int:
        return self._gift_days

    async def claim_gift(self, user_id: int) -> tuple[GiftResult, GrantResult | None]:
        """Once per user, ever: the grant ledger's (gift, user) key makes a repeat a no-op."""
        async with self._db.transaction() as session:
            grant = await grant_days(
                Tx(session),
                GrantRequest(
                    user_id,
                    self._gift_days,
                    GrantKind.GIFT,
                    str(user_id),
                    notify="grant_success",
                ),
                now=self._clock(),
            )
        return (GiftResult.GRANTED, grant) if grant else (GiftResult.ALREADY, None)

    async def gift_claimed(self, user_id: int) -> bool:
        async with self._db.transaction() as session:
            found = await session.execute(
                select(Grant.id).where(Grant.kind == GrantKind.GIFT, Grant.source == str(user_id))
            )
            return found.first() is not None

    async def redeem(self, user_id: int, raw_code: str) -> Redemption:
        """Case-insensitive; active, unexpired, under its limit, once per user — all or nothing."""
        code = normalize_code(raw_code)
        if not is_plausible_code(code):
            return Redemption(PromoResult.UNKNOWN)
        now = self._clock()
        try:
            async with self._db.transaction() as session:
                promo = await session.get(PromoCode, code)
                if promo is None:
                    raise _Abort(PromoResult.UNKNOWN)
                # First the per-user claim: a concurrent second try by the same user waits here
                # (PostgreSQL) or behind the write lock (SQLite), then finds the row.
                claimed = await session.execute(
                    insert_ignoring_conflicts(session, PromoRedemption)
                    .values(code=code, user_id=user_id, created_at=now)
                    .on_conflict_do_nothing(index_elements=["code", "user_id"])
                    .returning(PromoRedemption.id)
                )
                if claimed.scalar() is None:
                    raise _Abort(PromoResult.ALREADY_USED)
                # Then the shared counter, compare-and-set against the limit.
                taken = await session.execute(
                    update(PromoCode)
                    .where(
                        PromoCode.code == code,
                        PromoCode.active.is_(True),
                        PromoCode.used_count < PromoCode.max_uses,
                        (PromoCode.expires_at.is_(None)) | (PromoCode.expires_at > now),
                    )
                    .values(used_count=PromoCode.used_count + 1)
                    .returning(PromoCode.days)
                )
                days = taken.scalar()
                if days is None:
                    raise _Abort(_why_refused(promo, now))
                grant = await grant_days(
                    Tx(session),
                    GrantRequest(
                        user_id,
                        days,
                        GrantKind.PROMO,
                        f"{code}:{user_id}",
                        notify="grant_success",
                    ),
                    now=now,
                )
        except _Abort as abort:
            return Redemption(abort.result)
        return Redemption(PromoResult.GRANTED, days, grant)

    async def referral_stats(self, user_id: int) -> ReferralStats:
        async with self._db.transaction() as session:
            invited = await session.execute(
                select(func.count()).where(Referral.referrer_id == user_id)
            )
            activated = await session.execute(
                select(func.count()).where(
                    Referral.referrer_id == user_id, Referral.rewarded_at.is_not(None)
                )
            )
            return ReferralStats(int(invited.scalar_one()), int(activated.scalar_one()))


def _why_refused(promo: PromoCode, now: datetime) -> PromoResult:
    if not promo.active:
        return PromoResult.INACTIVE
    if promo.expires_at is not None and promo.expires_at <= now:
        return PromoResult.EXPIRED
    return PromoResult.EXHAUSTED
