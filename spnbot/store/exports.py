"""Statements behind the CSV exports: payments and customers in pages, by ascending key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.states import PaymentStatus
from spnbot.store.models import PAYMENTS, USERS


async def payments_page(
    session: AsyncSession,
    *,
    since: datetime | None,
    until: datetime | None,
    after_id: int,
    limit: int,
) -> list[Any]:
    """Payments created in [since, until), with their customer's username, after ``after_id``."""
    stmt = (
        select(
            PAYMENTS.c.id,
            PAYMENTS.c.public_id,
            PAYMENTS.c.external_id,
            PAYMENTS.c.user_id,
            USERS.c.username,
            PAYMENTS.c.tariff_code,
            PAYMENTS.c.days,
            PAYMENTS.c.amount_minor,
            PAYMENTS.c.currency,
            PAYMENTS.c.provider,
            PAYMENTS.c.method,
            PAYMENTS.c.status,
            PAYMENTS.c.created_at,
            PAYMENTS.c.paid_at,
            PAYMENTS.c.paid_via,
        )
        .join(USERS, USERS.c.tg_id == PAYMENTS.c.user_id)
        .where(PAYMENTS.c.id > after_id)
        .order_by(PAYMENTS.c.id)
        .limit(limit)
    )
    if since is not None:
        stmt = stmt.where(PAYMENTS.c.created_at >= since)
    if until is not None:
        stmt = stmt.where(PAYMENTS.c.created_at < until)
    return list((await session.execute(stmt)).all())


def _paid_sum(currency: str) -> Any:
    return func.coalesce(
        func.sum(case((PAYMENTS.c.currency == currency, PAYMENTS.c.amount_minor), else_=0)), 0
    )


async def customers_page(session: AsyncSession, *, after_id: int, limit: int) -> list[Any]:
    """Customers after ``after_id`` with what they paid in total (paid payments only)."""
    paid = (
        select(
            PAYMENTS.c.user_id,
            func.count().label("paid_count"),
            _paid_sum("RUB").label("paid_rub_minor"),
            _paid_sum("XTR").label("paid_xtr"),
        )
        .where(PAYMENTS.c.status == PaymentStatus.PAID)
        .group_by(PAYMENTS.c.user_id)
        .subquery()
    )
    stmt = (
        select(
            USERS.c.tg_id,
            USERS.c.username,
            USERS.c.first_name,
            USERS.c.language,
            USERS.c.created_at,
            USERS.c.terms_accepted_at,
            USERS.c.expires_at,
            USERS.c.referrer_id,
            USERS.c.blocked_at,
            func.coalesce(paid.c.paid_count, 0),
            func.coalesce(paid.c.paid_rub_minor, 0),
            func.coalesce(paid.c.paid_xtr, 0),
        )
        .outerjoin(paid, paid.c.user_id == USERS.c.tg_id)
        .where(USERS.c.tg_id > after_id)
        .order_by(USERS.c.tg_id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).all())
