"""The payments repository: every statement on the payments table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.money import Money
from spnbot.domain.settle import PAYABLE, PaymentFacts
from spnbot.domain.states import PaymentStatus
from spnbot.domain.tariffs import PlanLimits
from spnbot.store.models import PAYMENTS
from spnbot.store.plans import AssignedPlan


@dataclass(frozen=True)
class PaymentRow:
    """One payment as the services see it."""

    id: int
    public_id: str
    user_id: int
    provider: str
    method: str | None
    tariff_code: str
    days: int
    amount: Money
    status: PaymentStatus
    external_id: str | None
    pay_url: str | None
    details: Mapping[str, Any]
    created_at: datetime
    paid_at: datetime | None = None
    paid_via: str | None = None
    # The plan's limits when the customer chose it; None for payments from before plans.
    plan_limits: PlanLimits | None = None

    @property
    def plan(self) -> AssignedPlan | None:
        """The plan these days come with; None keeps the customer's current plan."""
        return (
            None if self.plan_limits is None else AssignedPlan(self.tariff_code, self.plan_limits)
        )

    @property
    def facts(self) -> PaymentFacts:
        return PaymentFacts(self.id, self.public_id, self.external_id, self.status, self.amount)


@dataclass(frozen=True)
class NewPayment:
    public_id: str
    user_id: int
    provider: str
    method: str | None
    tariff_code: str
    days: int
    amount: Money


@dataclass(frozen=True)
class Pending:
    """A pending payment the reconciler asks about."""

    provider: str
    external_id: str | None
    public_id: str
    created_at: datetime
    deadline: datetime | None


def _row(r: Row[Any]) -> PaymentRow:
    return PaymentRow(
        id=r.id,
        public_id=r.public_id,
        user_id=r.user_id,
        provider=r.provider,
        method=r.method,
        tariff_code=r.tariff_code,
        days=r.days,
        amount=Money(r.amount_minor, r.currency),
        status=PaymentStatus(r.status),
        external_id=r.external_id,
        pay_url=r.pay_url,
        details=r.details or {},
        created_at=r.created_at,
        paid_at=r.paid_at,
        paid_via=r.paid_via,
        plan_limits=None if r.plan_limits is None else PlanLimits.from_json(r.plan_limits),
    )


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, payment: NewPayment, now: datetime) -> None:
        await self._session.execute(
            PAYMENTS.insert().values(
                public_id=payment.public_id,
                user_id=payment.user_id,
                provider=payment.provider,
                method=payment.method,
                tariff_code=payment.tariff_code,
                days=payment.days,
                amount_minor=payment.amount.minor,
                currency=payment.amount.currency,
                status=PaymentStatus.PENDING,
                details={},
                created_at=now,
                updated_at=now,
            )
        )

    async def get(self, public_id: str, *, user_id: int | None = None) -> PaymentRow | None:
        stmt = select(PAYMENTS).where(PAYMENTS.c.public_id == public_id)
        if user_id is not None:
            stmt = stmt.where(PAYMENTS.c.user_id == user_id)
        row = (await self._session.execute(stmt)).first()
        return _row(row) if row is not None else None

    async def get_of_provider(
        self, public_id: str, provider: str, user_id: int
    ) -> PaymentRow | None:
        row = (
            await self._session.execute(
                select(PAYMENTS).where(
                    PAYMENTS.c.public_id == public_id,
                    PAYMENTS.c.provider == provider,
                    PAYMENTS.c.user_id == user_id,
                )
            )
        ).first()
        return _row(row) if row is not None else None

    async def candidates(
        self, provider: str, external_ids: Iterable[str], order_ids: Iterable[str]
    ) -> list[PaymentRow]:
        """One provider's payments known by any of these ids. IN lists: the statement's shape
        does not depend on how many ids there are, so it is compiled once."""
        rows = await self._session.execute(
            select(PAYMENTS).where(
                PAYMENTS.c.provider == provider,
                or_(
                    PAYMENTS.c.external_id.in_(list(external_ids)),
                    PAYMENTS.c.public_id.in_(list(order_ids)),
                ),
            )
        )
        return [_row(r) for r in rows]

    async def move_to_paid(self, ids: Sequence[int], *, via: str, now: datetime) -> set[int]:
        """Compare-and-set payable → paid; returns the ids this call moved. Of racing signals
        (other batches, other instances) exactly one moves each payment."""
        if not ids:
            return set()
        rows = await self._session.execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.id.in_(list(ids)), PAYMENTS.c.status.in_(PAYABLE))
            .values(status=PaymentStatus.PAID, paid_at=now, paid_via=via, updated_at=now)
            .returning(PAYMENTS.c.id)
        )
        return set(rows.scalars())

    async def learn_external_id(self, payment_id: int, external_id: str) -> None:
        await self._session.execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.id == payment_id, PAYMENTS.c.external_id.is_(None))
            .values(external_id=external_id)
        )

    async def flag_mismatch(
        self, payment_id: int, *, reported: Money | None, reason: str, now: datetime
    ) -> bool:
        """Hold a payable payment for an admin; False when it was no longer payable."""
        flagged = await self._session.execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.id == payment_id, PAYMENTS.c.status.in_(PAYABLE))
            .values(
                status=PaymentStatus.MISMATCH,
                reported_amount_minor=reported.minor if reported else None,
                failure_reason=reason,
                updated_at=now,
            )
            .returning(PAYMENTS.c.id)
        )
        return flagged.scalar() is not None

    async def close_pending(
        self, payment_id: int, target: PaymentStatus, *, reason: str | None, now: datetime
    ) -> bool:
        """pending → failed/expired; False when it was no longer pending."""
        moved = await self._session.execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.id == payment_id, PAYMENTS.c.status == PaymentStatus.PENDING)
            .values(status=target, updated_at=now, failure_reason=reason)
            .returning(PAYMENTS.c.id)
        )
        return moved.scalar() is not None

    async def set_invoice(
        self,
        public_id: str,
        *,
        external_id: str,
        pay_url: str | None,
        details: Mapping[str, str],
        deadline: datetime | None,
        now: datetime,
    ) -> None:
        await self._session.execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.public_id == public_id)
            .values(
                external_id=external_id,
                pay_url=pay_url,
                details=dict(details),
                provider_deadline=deadline,
                updated_at=now,
            )
        )

    async def fail_pending(self, public_id: str, *, reason: str, now: datetime) -> None:
        await self._session.execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.public_id == public_id, PAYMENTS.c.status == PaymentStatus.PENDING)
            .values(status=PaymentStatus.FAILED, failure_reason=reason, updated_at=now)
        )

    async def pending(self) -> list[Pending]:
        rows = await self._session.execute(
            select(
                PAYMENTS.c.provider,
                PAYMENTS.c.external_id,
                PAYMENTS.c.public_id,
                PAYMENTS.c.created_at,
                PAYMENTS.c.provider_deadline,
            )
            .where(PAYMENTS.c.status == PaymentStatus.PENDING)
            .order_by(PAYMENTS.c.id)
        )
        return [Pending(*r) for r in rows]

    async def expire_pending(self, public_ids: Sequence[str], now: datetime) -> int:
        result = await self._session.execute(
            update(PAYMENTS)
            .where(
                PAYMENTS.c.public_id.in_(list(public_ids)),
                PAYMENTS.c.status == PaymentStatus.PENDING,
            )
            .values(status=PaymentStatus.EXPIRED, updated_at=now)
            .returning(PAYMENTS.c.id)
        )
        return len(result.all())

    async def keep_charge_id(
        self, public_id: str, provider: str, user_id: int, charge_id: str
    ) -> None:
        """Keep a charge id for refunds, once: a replayed message finds it already set."""
        await self._session.execute(
            update(PAYMENTS)
            .where(
                PAYMENTS.c.public_id == public_id,
                PAYMENTS.c.provider == provider,
                PAYMENTS.c.user_id == user_id,
                PAYMENTS.c.charge_id.is_(None),
            )
            .values(charge_id=charge_id)
        )
