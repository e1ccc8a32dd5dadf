"""Telegram Stars checkout: approve only what we expect, deliver through the one door."""

from __future__ import annotations

from sqlalchemy import select, update

from spnbot.domain.money import Money, MoneyError
from spnbot.domain.states import PaymentStatus
from spnbot.payments.base import ProviderStatus, StatusReport
from spnbot.services.confirm import Outcome, PaymentConfirmer
from spnbot.store.db import Database
from spnbot.store.models import Payment


class StarsCheckout:
    def __init__(self, db: Database, confirmer: PaymentConfirmer) -> None:
        self._db = db
        self._confirmer = confirmer

    async def precheckout_error(
        self, user_id: int, payload: str, currency: str, total: int
    ) -> str | None:
        """None to approve; else a text key saying why not (Telegram shows it to the user)."""
        async with self._db.transaction() as session:
            payment = (
                await session.execute(
                    select(Payment).where(
                        Payment.public_id == payload,
                        Payment.provider == "stars",
                        Payment.user_id == user_id,
                    )
                )
            ).scalar_one_or_none()
        if payment is None:
            return "stars_unknown"
        if payment.status != PaymentStatus.PENDING:
            return "stars_not_pending"
        if currency != payment.currency or total != payment.amount_minor:
            return "stars_amount"
        return None

    async def paid(
        self, user_id: int, payload: str, currency: str, total: int, charge_id: str
    ) -> Outcome:
        try:
            amount = Money(total, currency)
        except MoneyError:
            amount = None
        async with self._db.transaction() as session:
            # Keep the charge id for refunds; a replayed message finds it already set.
            await session.execute(
                update(Payment)
                .where(
                    Payment.public_id == payload,
                    Payment.provider == "stars",
                    Payment.user_id == user_id,
                    Payment.charge_id.is_(None),
                )
                .values(charge_id=charge_id)
            )
        report = StatusReport(payload, payload, ProviderStatus.PAID, amount, raw_status="paid")
        return await self._confirmer.apply("stars", report, via="telegram")
