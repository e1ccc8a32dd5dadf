"""Statements behind /stats charts: paid revenue and paying customers per day, subscription spans.

Days are calendar days at a fixed offset from UTC (the operator's Moscow time, +3, no DST),
bucketed by the database so a year of payments comes back as a few hundred rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.states import PaymentStatus
from spnbot.store.dialect import is_postgres
from spnbot.store.models import GRANTS, PAYMENTS, USERS


@dataclass(frozen=True)
class DayRevenue:
    day: date
    provider: str
    currency: str
    count: int
    amount_minor: int


@dataclass(frozen=True)
class Span:
    """One grant: the user's subscription ran from ``start`` (at least) until ``end``."""

    user_id: int
    start: datetime
    end: datetime


def _local_day(session: AsyncSession, column: Any, offset_hours: int) -> Any:
    if not -12 <= offset_hours <= 14:
        raise ValueError(f"not a UTC offset: {offset_hours}")
    if is_postgres(session):
        shifted = func.timezone("UTC", column) + literal_column(f"interval '{offset_hours} hours'")
        return cast(shifted, Date)
    return func.date(column, f"{offset_hours:+d} hours")  # SQLite stores naive UTC text


def _as_date(value: Any) -> date:
    # PostgreSQL answers a date, SQLite its ISO text.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _paid_between(since: datetime, until: datetime) -> Any:
    return (
        (PAYMENTS.c.status == PaymentStatus.PAID)
        & (PAYMENTS.c.paid_at >= since)
        & (PAYMENTS.c.paid_at < until)
    )


async def revenue_by_day(
    session: AsyncSession, since: datetime, until: datetime, offset_hours: int
) -> list[DayRevenue]:
    """Paid payments in [since, until) per local day, provider and currency."""
    day = _local_day(session, PAYMENTS.c.paid_at, offset_hours).label("day")
    rows = await session.execute(
        select(
            day,
            PAYMENTS.c.provider,
            PAYMENTS.c.currency,
            func.count(),
            func.sum(PAYMENTS.c.amount_minor),
        )
        .where(_paid_between(since, until))
        .group_by(day, PAYMENTS.c.provider, PAYMENTS.c.currency)
        .order_by(day, PAYMENTS.c.provider, PAYMENTS.c.currency)
    )
    # PostgreSQL sums BIGINT as NUMERIC: back to an exact int of minor units.
    return [DayRevenue(_as_date(d), p, c, int(n), int(total)) for d, p, c, n, total in rows.all()]


async def payers_by_day(
    session: AsyncSession, since: datetime, until: datetime, offset_hours: int
) -> dict[date, int]:
    """How many distinct customers paid on each local day in [since, until)."""
    day = _local_day(session, PAYMENTS.c.paid_at, offset_hours).label("day")
    rows = await session.execute(
        select(day, func.count(PAYMENTS.c.user_id.distinct()))
        .where(_paid_between(since, until))
        .group_by(day)
    )
    return {_as_date(d): int(n) for d, n in rows.all()}


async def payers_between(session: AsyncSession, since: datetime, until: datetime) -> int:
    """Distinct paying customers in the whole window (not the sum of the days)."""
    stmt = select(func.count(PAYMENTS.c.user_id.distinct())).where(_paid_between(since, until))
    return int((await session.execute(stmt)).scalar_one())


async def ever_paid(session: AsyncSession) -> bool:
    stmt = select(PAYMENTS.c.id).where(PAYMENTS.c.status == PaymentStatus.PAID).limit(1)
    return (await session.execute(stmt)).first() is not None


async def subscription_spans(session: AsyncSession, since: datetime, until: datetime) -> list[Span]:
    """Grants that can make someone active inside [since, until).

    A grant always extends (new expiry = max(now, old) + days), so a user is active at ``t``
    exactly when some grant made at or before ``t`` ends after ``t``.
    """
    rows = await session.execute(
        select(GRANTS.c.user_id, GRANTS.c.created_at, GRANTS.c.new_expiry)
        .where(GRANTS.c.created_at < until, GRANTS.c.new_expiry > since)
        .order_by(GRANTS.c.user_id, GRANTS.c.created_at)
    )
    return [Span(int(u), start, end) for u, start, end in rows.all()]


# -- the /stats caption's counts ------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    users_total: int
    users_today: int
    users_week: int
    active_subscriptions: int
    pending_payments: int


async def counts(
    session: AsyncSession, *, now: datetime, today: datetime, week_ago: datetime
) -> Counts:
    def users(*where: Any) -> Any:
        return select(func.count()).select_from(USERS).where(*where)

    async def one(stmt: Any) -> int:
        return int((await session.execute(stmt)).scalar_one())

    return Counts(
        users_total=await one(users()),
        users_today=await one(users(USERS.c.created_at >= today)),
        users_week=await one(users(USERS.c.created_at >= week_ago)),
        active_subscriptions=await one(users(USERS.c.expires_at > now)),
        pending_payments=await one(
            select(func.count())
            .select_from(PAYMENTS)
            .where(PAYMENTS.c.status == PaymentStatus.PENDING)
        ),
    )


@dataclass(frozen=True)
class PaidTotal:
    provider: str
    currency: str
    count: int
    amount_minor: int


async def paid_since(session: AsyncSession, since: datetime) -> list[PaidTotal]:
    """Paid payments since ``since`` by provider and currency, in a stable order."""
    rows = await session.execute(
        select(
            PAYMENTS.c.provider,
            PAYMENTS.c.currency,
            func.count(),
            func.sum(PAYMENTS.c.amount_minor),
        )
        .where(PAYMENTS.c.status == PaymentStatus.PAID, PAYMENTS.c.paid_at >= since)
        .group_by(PAYMENTS.c.provider, PAYMENTS.c.currency)
        .order_by(PAYMENTS.c.provider, PAYMENTS.c.currency)
    )
    # PostgreSQL sums BIGINT as NUMERIC: back to an exact int of minor units.
    return [PaidTotal(p, c, int(n), int(total)) for p, c, n, total in rows.all()]
