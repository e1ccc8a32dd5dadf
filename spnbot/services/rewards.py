"""Free days: the channel gift, promo codes, and the referral link's numbers."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from spnbot.domain.expiry import utcnow
from spnbot.domain.states import GrantKind
from spnbot.services.grants import GrantRequest, GrantResult, grant_days
from spnbot.store.group_commit import Transactional
from spnbot.store.promos import PromoRow
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
        self, store: Transactional[Tx], *, gift_days: int, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._store = store
        self._gift_days = gift_days
        self._clock = clock

    @property
    def gift_days(self) -> int:
        return self._gift_days

    async def claim_gift(self, user_id: int) -> tuple[GiftResult, GrantResult | None]:
        """Once per user, ever: the grant ledger's (gift, user) key makes a repeat a no-op."""
        async with self._store.transaction() as tx:
            grant = await grant_days(
                tx,
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
        async with self._store.transaction() as tx:
            return await tx.ledger.exists(GrantKind.GIFT, str(user_id))

    async def redeem(self, user_id: int, raw_code: str) -> Redemption:
        """Case-insensitive; active, unexpired, under its limit, once per user — all or nothing."""
        code = normalize_code(raw_code)
        if not is_plausible_code(code):
            return Redemption(PromoResult.UNKNOWN)
        now = self._clock()
        try:
            async with self._store.transaction() as tx:
                promo = await tx.promos.get(code)
                if promo is None:
                    raise _Abort(PromoResult.UNKNOWN)
                # First the per-user claim, then the shared counter: a concurrent second try
                # by the same user waits on the first one's claim and then finds it.
                if not await tx.promos.claim(code, user_id, now):
                    raise _Abort(PromoResult.ALREADY_USED)
                days = await tx.promos.take_use(code, now)
                if days is None:
                    raise _Abort(_why_refused(promo, now))
                grant = await grant_days(
                    tx,
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
        async with self._store.transaction() as tx:
            invited, activated = await tx.referrals.counts(user_id)
        return ReferralStats(invited, activated)


def _why_refused(promo: PromoRow, now: datetime) -> PromoResult:
    if not promo.active:
        return PromoResult.INACTIVE
    if promo.expires_at is not None and promo.expires_at <= now:
        return PromoResult.EXPIRED
    return PromoResult.EXHAUSTED
