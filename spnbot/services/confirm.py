"""The one door for "paid": every signal about a payment ends here, and acts at most once."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.expiry import utcnow
from spnbot.domain.money import Money
from spnbot.domain.states import GrantKind, PaymentStatus
from spnbot.jobs import queue
from spnbot.jobs.queue import ClaimedJob, NewJob
from spnbot.payments.base import ProviderStatus, StatusReport
from spnbot.services.grants import GrantRequest, grant_days, grant_many
from spnbot.services.notices import Notice, NoticeButton
from spnbot.services.notify import ADMIN_BATCH_WINDOW, ADMIN_NOTICE, NOTIFY, notify_payload
from spnbot.store.db import Database
from spnbot.store.group_commit import GroupCommit
from spnbot.store.models import PAYMENTS, Referral

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


# Runs claimed follow-up jobs now, in this process (``JobRunner.adopt``).
Adopt = Callable[[Sequence[ClaimedJob]], Sequence["asyncio.Task[None]"]]


@dataclass(frozen=True)
class _PaidSignal:
    provider: str
    report: StatusReport
    via: str


Settled = tuple[Outcome, list[ClaimedJob]]


class PaymentConfirmer:
    def __init__(
        self,
        db: Database,
        *,
        referral_bonus_days: int,
        clock: Callable[[], datetime] = utcnow,
        adopt: Adopt | None = None,
        fulfil_wait: float = 5.0,
        lease: timedelta = timedelta(minutes=2),
    ) -> None:
        self._db = db
        self._referral_days = referral_bonus_days
        self._clock = clock
        self._adopt = adopt
        self._fulfil_wait = fulfil_wait
        self._lease = lease
        # Concurrent "paid" signals (a burst of webhooks) share one transaction.
        self._paid = GroupCommit(db, self._confirm_many, name="confirm")

    async def apply(
        self, provider: str, report: StatusReport, *, via: str, wait: bool = True
    ) -> Outcome:
        """Act on what a provider said; safe to call any number of times, concurrently.

        A confirmation also activates: the panel sync and the customer's message run in this
        process before the call returns (at most ``fulfil_wait`` seconds, or not at all with
        ``wait=False``; either way they go on in the background, and their jobs survive a
        crash). Webhook answers therefore pace a provider's burst to what we can activate.
        """
        if report.status is ProviderStatus.PAID:
            outcome, follow_ups = await self._paid.submit(_PaidSignal(provider, report, via))
            if follow_ups and self._adopt is not None:
                tasks = self._adopt(follow_ups)
                if tasks and wait:
                    await asyncio.wait(tasks, timeout=self._fulfil_wait)
            return outcome
        if report.status is ProviderStatus.PENDING:
            async with self._db.transaction() as session:
                found = (await _find_many(session, [(provider, report)]))[0]
            return Outcome.NO_CHANGE if found else Outcome.UNKNOWN
        target = (
            PaymentStatus.FAILED
            if report.status is ProviderStatus.FAILED
            else PaymentStatus.EXPIRED
        )
        return await self._close(provider, report, target)

    async def aclose(self) -> None:
        await self._paid.aclose()

    async def _confirm_many(
        self, session: AsyncSession, signals: Sequence[_PaidSignal]
    ) -> list[Settled]:
        now = self._clock()
        found = await _find_many(session, [(s.provider, s.report) for s in signals])
        settled: list[Settled] = [(Outcome.DUPLICATE, []) for _ in signals]
        winners: dict[int, int] = {}  # payment id → the signal that may move it
        for i, (signal, payment) in enumerate(zip(signals, found, strict=True)):
            if payment is None:
                settled[i] = (Outcome.UNKNOWN, [])
            elif signal.report.amount != Money(payment.amount_minor, payment.currency):
                if payment.status in PAYABLE:
                    await self._flag_mismatch(session, payment, signal.report, now)
                settled[i] = (Outcome.MISMATCH, [])
            elif payment.status in PAYABLE and payment.id not in winners:
                winners[payment.id] = i
        if not winners:
            return settled

        # Compare-and-set pending → paid: of racing signals (other batches, other instances),
        # exactly one moves each payment; the others are duplicates.
        moved: set[int] = set()
        by_via: dict[str, list[int]] = {}
        for payment_id, i in winners.items():
            by_via.setdefault(signals[i].via, []).append(payment_id)
        for via, ids in by_via.items():
            rows = await session.execute(
                update(PAYMENTS)
                .where(PAYMENTS.c.id.in_(ids), PAYMENTS.c.status.in_(PAYABLE))
                .values(status=PaymentStatus.PAID, paid_at=now, paid_via=via, updated_at=now)
                .returning(PAYMENTS.c.id)
            )
            moved.update(rows.scalars())
        confirmed = [i for payment_id, i in winners.items() if payment_id in moved]
        paid = [row for i in confirmed if (row := found[i]) is not None]
        for i, payment in zip(confirmed, paid, strict=True):
            report = signals[i].report
            if payment.external_id is None and report.external_id:
                await session.execute(
                    update(PAYMENTS)
                    .where(PAYMENTS.c.id == payment.id)
                    .values(external_id=report.external_id)
                )

        grants = await grant_many(
            session,
            [
                GrantRequest(
                    p.user_id,
                    p.days,
                    GrantKind.PAYMENT,
                    p.public_id,
                    notify="payment_success",
                    notify_params={
                        "tariff": p.tariff_code,
                        "amount": str(Money(p.amount_minor, p.currency)),
                    },
                )
                for p in paid
            ],
            now=now,
            claim_lease=self._lease if self._adopt is not None else None,
        )
        referred = [
            p.user_id for p, g in zip(paid, grants, strict=True) if g and g.referrer_id is not None
        ]
        await self._reward_referrers(session, referred, now)
        await queue.enqueue_many(
            session,
            [
                NewJob(
                    ADMIN_NOTICE,
                    {
                        "template": "admin_payment",
                        "params": {
                            "user_id": p.user_id,
                            "amount": str(Money(p.amount_minor, p.currency)),
                            "provider": p.provider,
                            "tariff": p.tariff_code,
                            "payment": p.public_id,
                            "via": signals[i].via,
                        },
                    },
                    dedup_key=f"admin:paid:{p.id}",
                    delay=ADMIN_BATCH_WINDOW,
                )
                for i, p in zip(confirmed, paid, strict=True)
            ],
        )
        for i, p, grant in zip(confirmed, paid, grants, strict=True):
            settled[i] = (Outcome.CONFIRMED, [grant.sync_job] if grant and grant.sync_job else [])
            log.info(
                "payment confirmed",
                extra={
                    "payment_id": p.public_id,
                    "user_id": p.user_id,
                    "provider": p.provider,
                    "via": signals[i].via,
                    "new_expiry": grant.new_expiry.isoformat() if grant else None,
                },
            )
        return settled

    async def _flag_mismatch(
        self, session: AsyncSession, payment: Row[Any], report: StatusReport, now: datetime
    ) -> None:
        reported = report.amount
        ours = Money(payment.amount_minor, payment.currency)
        flagged = await session.execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.id == payment.id, PAYMENTS.c.status.in_(PAYABLE))
            .values(
                status=PaymentStatus.MISMATCH,
                reported_amount_minor=reported.minor if reported else None,
                failure_reason=f"provider reported {reported} instead of {ours}",
                updated_at=now,
            )
            .returning(PAYMENTS.c.id)
        )
        if flagged.scalar() is None:
            return
        await queue.enqueue(
            session,
            ADMIN_NOTICE,
            {
                "template": "admin_mismatch",
                "params": {
                    "user_id": payment.user_id,
                    "payment": payment.public_id,
                    "expected": str(ours),
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

    async def _close(self, provider: str, report: StatusReport, target: PaymentStatus) -> Outcome:
        now = self._clock()
        async with self._db.transaction() as session:
            payment = (await _find_many(session, [(provider, report)]))[0]
            if payment is None:
                return Outcome.UNKNOWN
            moved = await session.execute(
                update(PAYMENTS)
                .where(PAYMENTS.c.id == payment.id, PAYMENTS.c.status == PaymentStatus.PENDING)
                .values(status=target, updated_at=now, failure_reason=report.raw_status or None)
                .returning(PAYMENTS.c.id)
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

    async def _reward_referrers(
        self, session: AsyncSession, user_ids: Sequence[int], now: datetime
    ) -> None:
        """First confirmed payment of a referred user: the referrer gets bonus days, once."""
        if not user_ids:
            return
        rewarded = await session.execute(
            update(Referral)
            .where(Referral.referred_id.in_(user_ids), Referral.rewarded_at.is_(None))
            .values(rewarded_at=now)
            .returning(Referral.referred_id, Referral.referrer_id)
        )
        for referred, referrer in sorted(rewarded.all()):
            await grant_days(
                session,
                user_id=referrer,
                days=self._referral_days,
                kind=GrantKind.REFERRAL,
                source=str(referred),
                now=now,
                notify="referral_bonus",
                notify_params={"days": self._referral_days},
            )


async def _find_many(
    session: AsyncSession, wanted: Sequence[tuple[str, StatusReport]]
) -> list[Row[Any] | None]:
    """Each report's payment: by the provider's id, else by our order id while the provider's
    id is not stored yet. One query per provider, whose shape does not depend on the number of
    reports (IN lists), so it is compiled once; ``_pick`` then applies the exact rule."""
    by_provider: dict[str, list[StatusReport]] = {}
    for provider, report in wanted:
        by_provider.setdefault(provider, []).append(report)
    found: dict[str, _Found] = {}
    for provider, reports in by_provider.items():
        externals = [r.external_id for r in reports if r.external_id]
        orders = [r.order_id for r in reports if r.order_id]
        rows = await session.execute(
            select(PAYMENTS).where(
                PAYMENTS.c.provider == provider,
                or_(PAYMENTS.c.external_id.in_(externals), PAYMENTS.c.public_id.in_(orders)),
            )
        )
        found[provider] = _Found(rows.all())
    return [found[provider].pick(report) for provider, report in wanted]


class _Found:
    """One provider's candidate rows, indexed by both ids (each unique for a provider)."""

    def __init__(self, rows: Sequence[Row[Any]]) -> None:
        self._by_external = {row.external_id: row for row in rows if row.external_id}
        self._by_public = {row.public_id: row for row in rows}

    def pick(self, report: StatusReport) -> Row[Any] | None:
        row = self._by_external.get(report.external_id) if report.external_id else None
        if row is None and report.order_id:
            row = self._by_public.get(report.order_id)
            if row is not None and row.external_id is not None:
                row = None  # known by the provider's id, which this report does not carry
        if row is not None and report.order_id and row.public_id != report.order_id:
            # The provider's id and our order id point at different payments: trust neither.
            log.warning("report ids disagree", extra={"payment_id": row.public_id})
            return None
        return row
