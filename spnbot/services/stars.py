"""Telegram Stars checkout: approve only what we expect, deliver through the one door."""

from __future__ import annotations

from spnbot.domain.money import Money, MoneyError
from spnbot.domain.reports import ProviderStatus, StatusReport
from spnbot.domain.states import PaymentStatus
from spnbot.payments.stars import NAME as STARS
from spnbot.services.confirm import Outcome, PaymentConfirmer
from spnbot.store.group_commit import Transactional
from spnbot.store.uow import Tx


class StarsCheckout:
    def __init__(self, store: Transactional[Tx], confirmer: PaymentConfirmer) -> None:
        self._store = store
        self._confirmer = confirmer

    async def precheckout_error(
        self, user_id: int, payload: str, currency: str, total: int
    ) -> str | None:
        """None to approve; else a text key saying why not (Telegram shows it to the user).

        Only the customer the invoice was made for, only while it is pending, only for its
        exact amount: Telegram takes the Stars once we approve.
        """
        async with self._store.transaction() as tx:
            payment = await tx.payments.get_of_provider(payload, STARS, user_id)
        if payment is None:
            return "stars_unknown"
        if payment.status is not PaymentStatus.PENDING:
            return "stars_not_pending"
        if currency != payment.amount.currency or total != payment.amount.minor:
            return "stars_amount"
        return None

    async def paid(
        self, user_id: int, payload: str, currency: str, total: int, charge_id: str
    ) -> Outcome:
        try:
            amount: Money | None = Money(total, currency)
        except MoneyError:
            amount = None
        async with self._store.transaction() as tx:
            # Keep the charge id for refunds; a replayed message finds it already set.
            await tx.payments.keep_charge_id(payload, STARS, user_id, charge_id)
        report = StatusReport(payload, payload, ProviderStatus.PAID, amount, raw_status="paid")
        return await self._confirmer.apply(STARS, report, via="telegram")
