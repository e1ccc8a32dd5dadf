"""The operator's use cases: promo codes, days by hand, numbers, one customer's card."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from spnbot.domain.expiry import MSK, utcnow
from spnbot.domain.money import Money
from spnbot.domain.states import GrantKind, JobStatus, PaymentStatus
from spnbot.domain.tariffs import PlanLimits, Tariff
from spnbot.services.grants import GrantRequest, grant_days
from spnbot.services.reports import ReportService
from spnbot.services.rewards import normalize_code
from spnbot.store import jobs as queue
from spnbot.store import stats as stats_store
from spnbot.store.db import Database
from spnbot.store.dialect import insert_ignoring_conflicts
from spnbot.store.models import Base, Grant, Payment, PromoCode, User
from spnbot.store.plans import AssignedPlan
from spnbot.store.uow import Tx

log = logging.getLogger(__name__)

RECENT_PAYMENTS = 5


class CodeResult(enum.StrEnum):
    CREATED = "created"
    EXISTS = "exists"


class GiveResult(enum.StrEnum):
    GRANTED = "granted"
    REPEAT = "repeat"  # this source already granted: a redelivered update changes nothing
    UNKNOWN_USER = "unknown_user"  # never started the bot: there is no one to extend


@dataclass(frozen=True)
class Given:
    result: GiveResult
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ProviderTotal:
    provider: str
    count: int
    revenue: tuple[Money, ...]  # one amount per currency: rubles and Stars never mix


@dataclass(frozen=True)
class Stats:
    users_total: int
    users_today: int
    users_week: int
    active_subscriptions: int
    paid_today: tuple[ProviderTotal, ...]
    days: int  # the period the next three cover: the last `days` days up to now
    paid_period: tuple[ProviderTotal, ...]
    payers_period: int  # distinct customers who paid in the period
    ever_paid: bool
    pending_payments: int
    jobs_waiting: int
    jobs_failed: int


@dataclass(frozen=True)
class PaymentLine:
    public_id: str
    provider: str
    amount: Money
    status: str
    created_at: datetime
    paid_at: datetime | None


@dataclass(frozen=True)
class UserCard:
    tg_id: int
    username: str | None
    first_name: str | None
    language: str
    created_at: datetime
    terms_accepted_at: datetime | None
    expires_at: datetime | None
    panel_ref: str | None
    referrer_id: int | None
    blocked_at: datetime | None
    payments: tuple[PaymentLine, ...]
    plan_code: str | None = None
    plan_limits: PlanLimits | None = None
    trial_at: datetime | None = None  # when the free trial was granted, if ever


def moscow_day_start(now: datetime) -> datetime:
    """00:00 Moscow time of the day ``now`` falls on."""
    return datetime.combine(now.astimezone(MSK).date(), time(0), MSK)


def moscow_day_end(day: date) -> datetime:
    """The last instant of ``day`` in Moscow time: a code "until 2026-12-31" works all that day."""
    return datetime.combine(day + timedelta(days=1), time(0), MSK) - timedelta(microseconds=1)


class AdminService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._db = db
        self._clock = clock
        self.reports = ReportService(db, clock=clock)

    async def create_code(
        self, code: str, days: int, limit: int, expires_at: datetime | None, created_by: int
    ) -> CodeResult:
        """A new code; an existing one is left exactly as it was (never silently reset)."""
        async with self._db.transaction() as session:
            inserted = await session.execute(
                insert_ignoring_conflicts(session, PromoCode)
                .values(
                    code=normalize_code(code),
                    days=days,
                    max_uses=limit,
                    used_count=0,
                    expires_at=expires_at,
                    active=True,
                    created_by=created_by,
                    created_at=self._clock(),
                )
                .on_conflict_do_nothing(index_elements=["code"])
                .returning(PromoCode.code)
            )
            created = inserted.scalar() is not None
        return CodeResult.CREATED if created else CodeResult.EXISTS

    async def give_days(
        self, admin_id: int, tg_id: int, days: int, source: str, plan: Tariff | None = None
    ) -> Given:
        """``source`` names the admin's message, so processing it twice grants once. With a
        ``plan``, the customer's panel user also gets that plan's limits."""
        assigned = AssignedPlan(plan.code, plan.limits) if plan is not None else None
        try:
            async with self._db.transaction() as session:
                grant = await grant_days(
                    Tx(session),
                    GrantRequest(
                        tg_id,
                        days,
                        GrantKind.ADMIN,
                        source,
                        notify="grant_success",
                        plan=assigned,
                    ),
                    now=self._clock(),
                )
        except LookupError:
            return Given(GiveResult.UNKNOWN_USER)
        if grant is None:
            return Given(GiveResult.REPEAT)
        log.info("admin %s granted %s days to %s", admin_id, days, tg_id)
        return Given(GiveResult.GRANTED, grant.new_expiry)

    async def stats(self, now: datetime | None = None, *, days: int = 30) -> Stats:
        now = now or self._clock()
        today = moscow_day_start(now)
        _, since = self.reports.window(days, now)
        async with self._db.transaction() as session:
            jobs = await queue.counts(session)
            return Stats(
                users_total=await _count(session, User),
                users_today=await _count(session, User, User.created_at >= today),
                users_week=await _count(session, User, User.created_at >= now - timedelta(days=7)),
                active_subscriptions=await _count(session, User, User.expires_at > now),
                paid_today=await _paid_since(session, today),
                days=days,
                paid_period=await _paid_since(session, since),
                payers_period=await stats_store.payers_between(session, since, now),
                ever_paid=await stats_store.ever_paid(session),
                pending_payments=await _count(
                    session, Payment, Payment.status == PaymentStatus.PENDING
                ),
                jobs_waiting=jobs.get(JobStatus.PENDING, 0) + jobs.get(JobStatus.RUNNING, 0),
                jobs_failed=jobs.get(JobStatus.FAILED, 0),
            )

    async def user_profile(self, tg_id: int) -> UserCard | None:
        async with self._db.transaction() as session:
            user = await session.get(User, tg_id)
            if user is None:
                return None
            rows = await session.execute(
                select(Payment)
                .where(Payment.user_id == tg_id)
                .order_by(Payment.created_at.desc(), Payment.id.desc())
                .limit(RECENT_PAYMENTS)
            )
            payments = tuple(
                PaymentLine(
                    p.public_id,
                    p.provider,
                    Money(p.amount_minor, p.currency),
                    p.status,
                    p.created_at,
                    p.paid_at,
                )
                for p in rows.scalars()
            )
            trial = await session.execute(
                select(Grant.created_at).where(
                    Grant.kind == GrantKind.TRIAL, Grant.source == str(tg_id)
                )
            )
            trial_at = trial.scalar()
        return UserCard(
            tg_id=user.tg_id,
            username=user.username,
            first_name=user.first_name,
            language=user.language,
            created_at=user.created_at,
            terms_accepted_at=user.terms_accepted_at,
            expires_at=user.expires_at,
            panel_ref=user.panel_ref,
            referrer_id=user.referrer_id,
            blocked_at=user.blocked_at,
            payments=payments,
            plan_code=user.plan_code,
            plan_limits=PlanLimits.from_json(user.plan_limits) if user.plan_code else None,
            trial_at=trial_at,
        )


async def _count(session: AsyncSession, model: type[Base], *where: ColumnElement[bool]) -> int:
    stmt = select(func.count()).select_from(model).where(*where)
    return int((await session.execute(stmt)).scalar_one())


async def _paid_since(session: AsyncSession, since: datetime) -> tuple[ProviderTotal, ...]:
    rows = await session.execute(
        select(Payment.provider, Payment.currency, func.count(), func.sum(Payment.amount_minor))
        .where(Payment.status == PaymentStatus.PAID, Payment.paid_at >= since)
        .group_by(Payment.provider, Payment.currency)
        .order_by(Payment.provider, Payment.currency)
    )
    counts: dict[str, int] = {}
    revenue: dict[str, list[Money]] = {}
    for provider, currency, n, total in rows.all():
        counts[provider] = counts.get(provider, 0) + int(n)
        # PostgreSQL sums BIGINT as NUMERIC: back to an exact int of minor units.
        revenue.setdefault(provider, []).append(Money(int(total), currency))
    return tuple(ProviderTotal(p, counts[p], tuple(revenue[p])) for p in counts)
