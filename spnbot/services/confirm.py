"""The one door for "paid": every signal about a payment ends here, and acts at most once.

Read one payment top-down: ``apply`` → (paid) ``_confirm_many`` in a shared unit of work:
load the payments the reports are about → ask the settle rule (``domain.settle``) → apply its
answer: hold a mismatch, move the payment with a compare-and-set, grant the days, reward the
referrer, queue the admin notice. The panel sync and the customer's message then run at once
in this process (``adopt``); their jobs were committed with the grant, so a crash repeats
them and never loses them.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from spnbot.domain.expiry import utcnow
from spnbot.domain.reports import ProviderStatus, StatusReport
from spnbot.domain.settle import Decision, PaymentIndex, Verdict, settle, settle_unverified
from spnbot.domain.states import GrantKind, PaymentStatus
from spnbot.services.grants import GrantRequest, grant_days, grant_many
from spnbot.services.notices import Notice, NoticeButton, Screen
from spnbot.services.notify import ADMIN_BATCH_WINDOW, ADMIN_NOTICE, NOTIFY, notify_payload
from spnbot.store.group_commit import GroupCommit, Transactional
from spnbot.store.jobs import ClaimedJob, Lease, NewJob
from spnbot.store.payments import PaymentRow
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    CONFIRMED = "confirmed"  # this call moved the payment to paid and granted the days
    DUPLICATE = "duplicate"  # already settled by an earlier signal: nothing changed
    UNKNOWN = "unknown"  # no such payment of ours
    MISMATCH = "mismatch"  # the reported amount is not ours (or the payment is held): nothing
    FAILED = "failed"  # the provider says the invoice failed; marked
    EXPIRED = "expired"
    NO_CHANGE = "no_change"  # still pending


# Runs claimed follow-up jobs now, in this process (``JobRunner.adopt``).
Adopt = Callable[[Sequence[ClaimedJob]], Sequence["asyncio.Task[None]"]]
Settled = tuple[Outcome, list[ClaimedJob]]

# What a "paid" report comes to when this call did not confirm it.
_NOT_CONFIRMED = {
    Verdict.UNKNOWN: Outcome.UNKNOWN,
    Verdict.MISMATCH: Outcome.MISMATCH,
    Verdict.DUPLICATE: Outcome.DUPLICATE,
    Verdict.CONFIRM: Outcome.DUPLICATE,  # another signal won the compare-and-set
}


@dataclass(frozen=True)
class PaidSignal:
    provider: str
    report: StatusReport
    via: str  # webhook, reconciler, button, telegram


class PaymentConfirmer:
    def __init__(
        self,
        store: Transactional[Tx],
        *,
        referral_bonus_days: int,
        clock: Callable[[], datetime] = utcnow,
        adopt: Adopt | None = None,
        lease: Lease | None = None,
        fulfil_wait: float = 5.0,
    ) -> None:
        """``adopt`` with ``lease``: follow-up jobs are written claimed by this instance and
        run here at once (without them, any runner claims them)."""
        self._store = store
        self._referral_days = referral_bonus_days
        self._clock = clock
        self._adopt = adopt
        self._fulfil_wait = fulfil_wait
        self._lease = lease
        # Concurrent "paid" signals (a burst of webhooks) share one transaction.
        self._paid = GroupCommit(store, self._confirm_many, name="confirm")

    async def apply(
        self, provider: str, report: StatusReport, *, via: str, wait: bool = True
    ) -> Outcome:
        """Act on what a provider said; safe to call any number of times, concurrently.

        A confirmation also activates: the panel sync and the customer's message run in this
        process before the call returns (at most ``fulfil_wait`` seconds, or not at all with
        ``wait=False``; either way they go on in the background, and their jobs survive a
        crash). Webhook answers therefore pace a provider's burst to what we can activate.
        """
        if report.status is not ProviderStatus.PAID:
            return await self._settle_unpaid(provider, report)
        outcome, follow_ups = await self._paid.submit(PaidSignal(provider, report, via))
        if follow_ups and self._adopt is not None:
            tasks = self._adopt(follow_ups)
            if tasks and wait:
                await asyncio.wait(tasks, timeout=self._fulfil_wait)
        return outcome

    async def answer_unasked(self, provider: str, claim: StatusReport) -> Outcome | None:
        """What an unverified claim comes to without asking the provider, or None when only
        the provider's own answer can settle it (``domain.settle.settle_unverified``). Reads
        only: a replayed or invented delivery changes nothing and costs no provider call."""
        async with self._store.transaction() as tx:
            payment = (await _load(tx, [(provider, claim)]))[0]
        decision = settle_unverified(payment.facts if payment else None, claim)
        return None if decision is None else _UNASKED[decision.verdict]

    async def aclose(self) -> None:
        await self._paid.aclose()

    # -- "paid": load → decide → apply, for a batch of signals in one unit of work -----------

    async def _confirm_many(self, tx: Tx, signals: Sequence[PaidSignal]) -> list[Settled]:
        now = self._clock()
        payments = await _load(tx, [(s.provider, s.report) for s in signals])
        decisions = [
            settle(p.facts if p else None, s.report) for p, s in zip(payments, signals, strict=True)
        ]
        settled: list[Settled] = [(_NOT_CONFIRMED[d.verdict], []) for d in decisions]

        claims: dict[int, int] = {}  # payment id → the one signal of this batch that may move it
        for i, (payment, decision) in enumerate(zip(payments, decisions, strict=True)):
            if payment is None:
                continue
            if decision.verdict is Verdict.MISMATCH and decision.flag:
                await self._hold(tx, payment, signals[i].report, now)
            elif decision.verdict is Verdict.CONFIRM:
                claims.setdefault(payment.id, i)

        moved = await _compare_and_set_paid(tx, claims, signals, now)
        confirmed = [(i, p) for pid, i in claims.items() if pid in moved and (p := payments[i])]
        for i, payment in confirmed:  # known by our order id only until now
            if payment.external_id is None and signals[i].report.external_id:
                await tx.payments.learn_external_id(payment.id, signals[i].report.external_id)

        grants = await grant_many(
            tx,
            [_grant_for(payment) for _, payment in confirmed],
            now=now,
            claim_lease=self._lease if self._adopt is not None else None,  # else: any runner
        )
        referred = [
            p.user_id for (_, p), g in zip(confirmed, grants, strict=True) if g and g.referrer_id
        ]
        await self._reward_referrers(tx, referred, now)
        await tx.jobs.add_many([_admin_notice(p, signals[i].via) for i, p in confirmed])

        for (i, payment), grant in zip(confirmed, grants, strict=True):
            if grant is None:  # the ledger already had it: nothing granted by this call
                log.warning(
                    "paid payment had a grant already", extra={"payment_id": payment.public_id}
                )
                continue
            settled[i] = (Outcome.CONFIRMED, [grant.sync_job] if grant.sync_job else [])
            log.info(
                "payment confirmed",
                extra={
                    "payment_id": payment.public_id,
                    "user_id": payment.user_id,
                    "provider": payment.provider,
                    "via": signals[i].via,
                    "new_expiry": grant.new_expiry.isoformat(),
                },
            )
        return settled

    async def _hold(self, tx: Tx, payment: PaymentRow, report: StatusReport, now: datetime) -> None:
        """A reported amount that is not ours: hold the payment for an admin, tell them once."""
        reported = report.amount
        reason = f"provider reported {reported} instead of {payment.amount}"
        if not await tx.payments.flag_mismatch(
            payment.id, reported=reported, reason=reason, now=now
        ):
            return
        await tx.jobs.add(
            ADMIN_NOTICE,
            {
                "template": "admin_mismatch",
                "params": {
                    "user_id": payment.user_id,
                    "payment": payment.public_id,
                    "expected": str(payment.amount),
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

    async def _reward_referrers(self, tx: Tx, user_ids: Sequence[int], now: datetime) -> None:
        """First confirmed payment of a referred user: the referrer gets bonus days, once."""
        for referred, referrer in await tx.referrals.reward_once(user_ids, now):
            bonus = GrantRequest(
                referrer,
                self._referral_days,
                GrantKind.REFERRAL,
                str(referred),
                notify="referral_bonus",
                notify_params={"days": self._referral_days},
            )
            await grant_days(tx, bonus, now=now)

    # -- not paid: still pending, failed or expired ------------------------------------------

    async def _settle_unpaid(self, provider: str, report: StatusReport) -> Outcome:
        now = self._clock()
        async with self._store.transaction() as tx:
            payment = (await _load(tx, [(provider, report)]))[0]
            decision = settle(payment.facts if payment else None, report)
            if payment is None or decision.verdict is not Verdict.CLOSE:
                return _UNPAID[decision.verdict]
            return await self._close(tx, payment, decision, report, now)

    async def _close(
        self, tx: Tx, payment: PaymentRow, decision: Decision, report: StatusReport, now: datetime
    ) -> Outcome:
        target = decision.close_as
        assert target is not None
        closed = await tx.payments.close_pending(
            payment.id, target, reason=report.raw_status or None, now=now
        )
        if not closed:  # settled meanwhile by another signal
            return Outcome.DUPLICATE
        if target is PaymentStatus.FAILED:
            notice = Notice(
                "payment_failed",
                {"payment": payment.public_id},
                [[NoticeButton("btn_buy", screen=Screen.TARIFFS)]],
            )
            await tx.jobs.add(
                NOTIFY,
                notify_payload(payment.user_id, notice),
                dedup_key=f"notify:failed:{payment.id}",
            )
            return Outcome.FAILED
        return Outcome.EXPIRED


_UNPAID = {
    Verdict.UNKNOWN: Outcome.UNKNOWN,
    Verdict.NO_CHANGE: Outcome.NO_CHANGE,
    Verdict.DUPLICATE: Outcome.DUPLICATE,
}


# Only payments no report can change are answered unasked: nothing here grants or closes.
_UNASKED = {
    Verdict.UNKNOWN: Outcome.UNKNOWN,
    Verdict.NO_CHANGE: Outcome.NO_CHANGE,
    Verdict.DUPLICATE: Outcome.DUPLICATE,
    Verdict.MISMATCH: Outcome.MISMATCH,
}


async def _load(tx: Tx, wanted: Sequence[tuple[str, StatusReport]]) -> list[PaymentRow | None]:
    """Each report's payment, with one query per provider (``domain.settle`` picks)."""
    by_provider: dict[str, list[StatusReport]] = {}
    for provider, report in wanted:
        by_provider.setdefault(provider, []).append(report)
    rows: dict[str, dict[int, PaymentRow]] = {}
    index: dict[str, PaymentIndex] = {}
    for provider, reports in by_provider.items():
        found = await tx.payments.candidates(
            provider,
            [r.external_id for r in reports if r.external_id],
            [r.order_id for r in reports if r.order_id],
        )
        rows[provider] = {row.id: row for row in found}
        index[provider] = PaymentIndex(row.facts for row in found)
    picked: list[PaymentRow | None] = []
    for provider, report in wanted:
        facts = index[provider].pick(report)
        if (
            facts is None
            and report.order_id
            and any(r.public_id == report.order_id for r in rows[provider].values())
        ):
            log.warning("report ids disagree", extra={"payment_id": report.order_id})
        picked.append(rows[provider][facts.id] if facts else None)
    return picked


async def _compare_and_set_paid(
    tx: Tx, claims: dict[int, int], signals: Sequence[PaidSignal], now: datetime
) -> set[int]:
    """pending → paid for the claimed payments; the ids this batch moved (one statement per
    way the signal came, which is nearly always one)."""
    by_via: dict[str, list[int]] = {}
    for payment_id, i in claims.items():
        by_via.setdefault(signals[i].via, []).append(payment_id)
    moved: set[int] = set()
    for via, ids in by_via.items():
        moved |= await tx.payments.move_to_paid(ids, via=via, now=now)
    return moved


def _grant_for(payment: PaymentRow) -> GrantRequest:
    return GrantRequest(
        payment.user_id,
        payment.days,
        GrantKind.PAYMENT,
        payment.public_id,
        notify="payment_success",
        notify_params={"tariff": payment.tariff_code, "amount": str(payment.amount)},
        plan=payment.plan,
    )


def _admin_notice(payment: PaymentRow, via: str) -> NewJob:
    return NewJob(
        ADMIN_NOTICE,
        {
            "template": "admin_payment",
            "params": {
                "user_id": payment.user_id,
                "amount": str(payment.amount),
                "provider": payment.provider,
                "tariff": payment.tariff_code,
                "payment": payment.public_id,
                "via": via,
            },
        },
        dedup_key=f"admin:paid:{payment.id}",
        delay=ADMIN_BATCH_WINDOW,
    )
