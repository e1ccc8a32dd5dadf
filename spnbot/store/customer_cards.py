"""What an admin's /user shows about one customer: their row, recent payments, trial use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.money import Money
from spnbot.domain.states import GrantKind
from spnbot.store.models import GRANTS, PAYMENTS, USERS


@dataclass(frozen=True)
class RecentPayment:
    public_id: str
    provider: str
    amount: Money
    status: str
    created_at: datetime
    paid_at: datetime | None


async def customer(session: AsyncSession, tg_id: int) -> Any | None:
    """The user's row (columns by name), or None."""
    return (await session.execute(select(USERS).where(USERS.c.tg_id == tg_id))).first()


async def recent_payments(session: AsyncSession, tg_id: int, limit: int) -> list[RecentPayment]:
    rows = await session.execute(
        select(PAYMENTS)
        .where(PAYMENTS.c.user_id == tg_id)
        .order_by(PAYMENTS.c.created_at.desc(), PAYMENTS.c.id.desc())
        .limit(limit)
    )
    return [
        RecentPayment(
            p.public_id,
            p.provider,
            Money(p.amount_minor, p.currency),
            p.status,
            p.created_at,
            p.paid_at,
        )
        for p in rows
    ]


async def trial_started(session: AsyncSession, tg_id: int) -> datetime | None:
    found = await session.execute(
        select(GRANTS.c.created_at).where(
            GRANTS.c.kind == GrantKind.TRIAL, GRANTS.c.source == str(tg_id)
        )
    )
    return found.scalar()
