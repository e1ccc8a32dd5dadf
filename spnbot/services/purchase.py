"""Starting a purchase: our row first, then the provider, then what the user needs to pay."""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update

from spnbot.domain.expiry import utcnow
from spnbot.domain.money import Money
from spnbot.domain.states import PaymentStatus
from spnbot.domain.tariffs import Tariff
from spnbot.payments.base import InvoiceRequest, PaymentProvider, ProviderError
from spnbot.services.confirm import Outcome, PaymentConfirmer
from spnbot.store.db import Database
from spnbot.store.models import Payment

log = logging.getLogger(__name__)


class PurchaseStatus(enum.StrEnum):
    CREATED = "created"
    PROVIDER_FAILED = "provider_failed"


@dataclass(frozen=True)
class PurchaseResult:
    status: PurchaseStatus
    public_id: str
    amount: Money
    tariff: Tariff
    pay_url: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


def new_order_id() -> str:
    return f"spn-{secrets.token_hex(10)}"


class PurchaseService:
    def __init__(
        self,
        db: Database,
        providers: Mapping[str, PaymentProvider],
        confirmer: PaymentConfirmer,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._providers = dict(providers)
        self._confirmer = confirmer
        self._clock = clock

    @property
    def provider_names(self) -> list[str]:
        return list(self._providers)

    async def start(
        self, user_id: int, tariff: Tariff, provider_name: str, method: str | None, description: str
    ) -> PurchaseResult:
        provider = self._providers[provider_name]
        amount = tariff.stars if provider_name == "stars" else tariff.rub
        public_id = new_order_id()
        now = self._clock()
        async with self._db.transaction() as session:
            session.add(
                Payment(
                    public_id=public_id,
                    user_id=user_id,
                    provider=provider_name,
                    method=method,
                    tariff_code=tariff.code,
                    days=tariff.days,
                    amount_minor=amount.minor,
                    currency=amount.currency,
                    status=PaymentStatus.PENDING,
                    details={},
                    created_at=now,
                    updated_at=now,
                )
            )
        request = InvoiceRequest(public_id, user_id, amount, description, method)
        try:
            invoice = await provider.create_invoice(request)
        except ProviderError as exc:
            log.warning(
                "provider refused the invoice: %s",
                exc,
                extra={"payment_id": public_id, "user_id": user_id, "provider": provider_name},
            )
            async with self._db.transaction() as session:
                await session.execute(
                    update(Payment)
                    .where(Payment.public_id == public_id, Payment.status == PaymentStatus.PENDING)
                    .values(
                        status=PaymentStatus.FAILED,
                        failure_reason=str(exc)[:500],
                        updated_at=self._clock(),
                    )
                )
            return PurchaseResult(
                PurchaseStatus.PROVIDER_FAILED, public_id, amount, tariff, error=str(exc)
            )
        async with self._db.transaction() as session:
            await session.execute(
                update(Payment)
                .where(Payment.public_id == public_id)
                .values(
                    external_id=invoice.external_id,
                    pay_url=invoice.pay_url,
                    details=dict(invoice.details),
                    updated_at=self._clock(),
                )
            )
        log.info(
            "invoice created",
            extra={"payment_id": public_id, "user_id": user_id, "provider": provider_name},
        )
        return PurchaseResult(
            PurchaseStatus.CREATED,
            public_id,
            amount,
            tariff,
            pay_url=invoice.pay_url,
            details=invoice.details,
        )

    async def check(self, user_id: int, public_id: str) -> Outcome | PaymentStatus:
        """The "✅ Проверить оплату" button: ask the provider now, settle through the one door."""
        async with self._db.transaction() as session:
            payment = (
                await session.execute(
                    select(Payment).where(
                        Payment.public_id == public_id, Payment.user_id == user_id
                    )
                )
            ).scalar_one_or_none()
        if payment is None:
            return Outcome.UNKNOWN
        if payment.status != PaymentStatus.PENDING or not payment.external_id:
            return PaymentStatus(payment.status)
        provider = self._providers.get(payment.provider)
        if provider is None:
            return PaymentStatus(payment.status)
        reports = await provider.fetch_statuses([payment.external_id])
        if not reports:
            return PaymentStatus.PENDING
        outcome = await self._confirmer.apply(payment.provider, reports[0], via="button")
        return PaymentStatus.PAID if outcome is Outcome.DUPLICATE else outcome
