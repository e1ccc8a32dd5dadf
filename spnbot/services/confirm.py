"""The one door for "paid": every signal about a payment ends here, and acts at most once."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.expiry import utcnow
from spnbot.domain.money import Money
from spnbot.domain.states import GrantKind, PaymentStatus
from spnbot.jobs import queue
from spnbot.payments.base import ProviderStatus, StatusReport
from spnbot.services.grants import grant_days
from spnbot.services.notices import Notice, NoticeButton
from spnbot.services.notify import ADMIN_NOTICE, NOTIFY, notify_payload
from spnbot.store.db import Database
from spnbot.store.models import Payment, Referral

log = logging.getLogger(__name__)

# A paid signal may still arrive after we gave up waiting or the provider reported an error:
# the money is real, so those states can still become paid. "mismatch" waits for an admin.
PAYABLE = (PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.FAILED)


class Outcome(enum.StrEnum):
    CONFIRMED = "confirmed"  # this call moved the payment to paid and granted the days
    DUPLICATE = "duplicate"  # already settled by an earlier signal: nothing changed
    UNKNOWN = "unknown"  # no such payment of ours
    MISMATCH = "mismatch"  # the reported amount is not ours: flagged, nothing granted
    FAILED = "failed"  # the provider says the invoice failed; marked
    EXPIRED = "expired"
    NO_CHANGE = "no_change"  # still pending


class PaymentConfirmer:
    def __init__(
        self,
        db: Database,
        *,
        referral_bonus_days: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._referral_days = referral_bonus_days
        self._clock = clock

    async def apply(self, provider: str, report: StatusReport, *, via: str) -> Outcome:
        """Act on what a provider said; safe to call any number of times, concurrently."""
        if report.status is ProviderStatus.PAID:
            return await self._confirm(provider, report, via=via)
        if report.status is ProviderStatus.PENDING:
            async with self._db.transaction() as session:
                found = await _find(session, provider, report)
            return Outcome.NO_CHANGE if found else Outcome.UNKNOWN
        target = (
            PaymentStatus.FAILED
            if report.status is ProviderStatus.FAILED
            else PaymentStatus.EXPIRED
        )
        return await self._close(provider, report, target)

    async def _confirm(self, provider: str, report: StatusReport, *, via: str) -> Outcome:
        now = self._clock()
        async with self._db.transaction() as session:
            payment = await _find(session, provider, report)
            if payment is None:
                return Outcome.UNKNOWN
            ours = Money(payment.amount_minor, payment.currency)
            if report.amount != ours:
                if payment.status not in PAYABLE:
                    return Outcome.MISMATCH  # settled already; a different amount is refused
                return await self._flag_mismatch(session, payment, report, now)
            if payment.status not in PAYABLE:
                return Outcome.DUPLICATE
            moved = await session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.status.in_(PAYABLE))
                .values(
                    status=PaymentStatus.PAID,
                    paid_at=now,
                    paid_via=via,
                    updated_at=now,
                    external_id=payment.external_id or report.external_id,
                )
                .returning(Payment.id)
            )
            if moved.scalar() is None:
                return Outcome.DUPLICATE  # a concurrent signal won the compare-and-set
            grant = await grant_days(
                session,
                user_id=payment.user_id,
                days=payment.days,
                kind=GrantKind.PAYMENT,
                source=payment.public_id,
                now=now,
                notify="payment_success",
                notify_params={"tariff": payment.tariff_code, "amount": str(ours)},
            )
            await self._reward_referrer(session, payment.user_id, now)
            await queue.enqueue(
                session,
                ADMIN_NOTICE,
                {
                    "template": "admin_payment",
                    "params": {
                        "user_id": payment.user_id,
                        "amount": str(ours),
                        "provider": provider,
                        "tariff": payment.tariff_code,
                        "payment": payment.public_id,
                        "via": via,
                    },
                },
                dedup_key=f"admin:paid:{payment.id}",
            )
        log.info(
            "payment confirmed",
            extra={
                "payment_id": payment.public_id,
                "user_id": payment.user_id,
                "provider": provider,
                "via": via,
                "new_expiry": grant.new_expiry.isoformat() if grant else None,
            },
        )
        return Outcome.CONFIRMED

    async def _flag_mismatch(
        self, session: AsyncSession, payment: Payment, report: StatusReport, now: datetime
    ) -> Outcome:
        reported = report.amount
        flagged = await session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.status.in_(PAYABLE))
            .values(
                status=PaymentStatus.MISMATCH,
                reported_amount_minor=reported.minor if reported else None,
                failure_reason=f"provider reported {reported} instead of "
                f"{Money(payment.amount_minor, payment.currency)}",
                updated_at=now,
            )
            .returning(Payment.id)
        )
        if flagged.scalar() is not None:
            await queue.enqueue(
                session,
                ADMIN_NOTICE,
                {
                    "template": "admin_mismatch",
                    "params": {
                        "user_id": payment.user_id,
                        "payment": payment.public_id,
                        "expected": str(Money(payment.amount_minor, payment.currency)),
                        "reported": str(reported) if reported else "?",
                        "provider": payment.provider,
                    },
                },
                dedup_key=f"admin:mismatch:{payment.id}",
            )
            log.warning(
                "payment amount mismatch",
                extra={"payment_id": payment.public_id, "user_id": payment.user_id},
            )
        return Outcome.MISMATCH

    async def _close(self, provider: str, report: StatusReport, target: PaymentStatus) -> Outcome:
        now = self._clock()
        async with self._db.transaction() as session:
            payment = await _find(session, provider, report)
            if payment is None:
                return Outcome.UNKNOWN
            moved = await session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.status == PaymentStatus.PENDING)
                .values(status=target, updated_at=now, failure_reason=report.raw_status or None)
                .returning(Payment.id)
            )
            if moved.scalar() is None:
                return Outcome.DUPLICATE
            if target is PaymentStatus.FAILED:
                notice = Notice(
                    "payment_failed",
                    {"payment": payment.public_id},
                    [[NoticeButton("btn_buy", callback_data="buy")]],
                )
                await queue.enqueue(
                    session,
                    NOTIFY,
                    notify_payload(payment.user_id, notice),
                    dedup_key=f"notify:failed:{payment.id}",
                )
        return Outcome.FAILED if target is PaymentStatus.FAILED else Outcome.EXPIRED

    async def _reward_referrer(self, session: AsyncSession, user_id: int, now: datetime) -> None:
        """First confirmed payment of a referred user: the referrer gets bonus days, once."""
        rewarded = await session.execute(
            update(Referral)
            .where(Referral.referred_id == user_id, Referral.rewarded_at.is_(None))
            .values(rewarded_at=now)
            .returning(Referral.referrer_id)
        )
        referrer = rewarded.scalar()
        if referrer is None:
            return
        await grant_days(
            session,
            user_id=referrer,
            days=self._referral_days,
            kind=GrantKind.REFERRAL,
            source=str(user_id),
            now=now,
            notify="referral_bonus",
            notify_params={"days": self._referral_days},
        )


async def _find(session: AsyncSession, provider: str, report: StatusReport) -> Payment | None:
    """By the provider's id; else by our order id while the provider id is not stored yet."""
    stmt = select(Payment).where(Payment.provider == provider)
    if report.order_id:
        stmt = stmt.where(
            or_(
                Payment.external_id == report.external_id,
                (Payment.public_id == report.order_id) & Payment.external_id.is_(None),
            )
        )
    else:
        stmt = stmt.where(Payment.external_id == report.external_id)
    payment = (await session.execute(stmt)).scalars().first()
    if payment is None:
        return None
    if report.order_id and payment.public_id != report.order_id:
        # The provider's id and our order id point at different payments: trust neither.
        log.warning("report ids disagree", extra={"payment_id": payment.public_id})
        return None
    return payment
