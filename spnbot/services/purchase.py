"""Starting a purchase: our row first, then the provider, then what the user needs to pay."""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from spnbot.domain.expiry import utcnow
from spnbot.domain.money import Money
from spnbot.domain.states import PaymentStatus
from spnbot.domain.tariffs import Tariff
from spnbot.payments.base import InvoiceRequest, ProviderError
from spnbot.payments.registry import ProviderRegistry
from spnbot.services.confirm import Outcome, PaymentConfirmer
from spnbot.store.group_commit import Transactional
from spnbot.store.payments import NewPayment
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)


class PurchaseStatus(enum.StrEnum):
    CREATED = "created"
    PROVIDER_FAILED = "provider_failed"


@dataclass(frozen=True)
class PurchaseResult:
    status: PurchaseStatus
    public_id: str
    provider: str
    amount: Money
    tariff: Tariff
    pay_url: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    amount_to_pay: Money | None = None  # what the provider says to transfer, when it says
    deadline: datetime | None = None  # the provider's own expiry of the invoice
    error: str | None = None


def new_order_id() -> str:
    return f"spn-{secrets.token_hex(10)}"


class PurchaseService:
    def __init__(
        self,
        store: Transactional[Tx],
        providers: ProviderRegistry,
        confirmer: PaymentConfirmer,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._providers = providers
        self._confirmer = confirmer
        self._clock = clock

    async def start(
        self, user_id: int, tariff: Tariff, provider_name: str, method: str | None, description: str
    ) -> PurchaseResult:
        provider = self._providers.get(provider_name)
        if provider is None:
            raise LookupError(f"payment provider {provider_name!r} is not offered")
        amount = tariff.price(provider.currency)
        public_id = new_order_id()
        async with self._store.transaction() as tx:
            await tx.payments.add(
                NewPayment(
                    public_id, user_id, provider_name, method, tariff.code, tariff.days, amount
                ),
                self._clock(),
            )
            # The plan's limits as chosen: what activation applies even if the plans change.
            await tx.plans.keep_snapshot(public_id, tariff.limits)
        request = InvoiceRequest(public_id, user_id, amount, description, method)
        context = {"payment_id": public_id, "user_id": user_id, "provider": provider_name}
        try:
            invoice = await provider.create_invoice(request)
        except ProviderError as exc:
            log.warning("provider refused the invoice: %s", exc, extra=context)
            async with self._store.transaction() as tx:
                await tx.payments.fail_pending(public_id, reason=str(exc)[:500], now=self._clock())
            return PurchaseResult(
                PurchaseStatus.PROVIDER_FAILED,
                public_id,
                provider_name,
                amount,
                tariff,
                error=str(exc),
            )
        async with self._store.transaction() as tx:
            await tx.payments.set_invoice(
                public_id,
                external_id=invoice.external_id,
                pay_url=invoice.pay_url,
                details=invoice.details,
                deadline=invoice.deadline,
                now=self._clock(),
            )
        log.info("invoice created", extra=context)
        return PurchaseResult(
            PurchaseStatus.CREATED,
            public_id,
            provider_name,
            amount,
            tariff,
            pay_url=invoice.pay_url,
            details=invoice.details,
            amount_to_pay=invoice.amount_to_pay,
            deadline=invoice.deadline,
        )

    async def check(self, user_id: int, public_id: str) -> Outcome | PaymentStatus:
        """The "✅ Проверить оплату" button: ask the provider now, settle through the one door."""
        async with self._store.transaction() as tx:
            payment = await tx.payments.get(public_id, user_id=user_id)
        if payment is None:
            return Outcome.UNKNOWN
        if payment.status is not PaymentStatus.PENDING or not payment.external_id:
            return payment.status
        provider = self._providers.get(payment.provider)
        if provider is None:
            return payment.status
        reports = await provider.fetch_statuses([payment.external_id])
        if not reports:
            return PaymentStatus.PENDING
        outcome = await self._confirmer.apply(payment.provider, reports[0], via="button")
        return PaymentStatus.PAID if outcome is Outcome.DUPLICATE else outcome
