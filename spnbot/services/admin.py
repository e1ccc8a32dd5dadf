"""The operator's use cases: promo codes, days by hand, numbers, one customer's card."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from spnbot.domain.expiry import MSK, utcnow
from spnbot.domain.money import Money
from spnbot.domain.states import GrantKind, JobStatus
from spnbot.domain.tariffs import PlanLimits, Tariff
from spnbot.services.grants import GrantRequest, grant_days
from spnbot.services.reports import ReportService
from spnbot.services.rewards import normalize_code
from spnbot.store import customer_cards as cards
from spnbot.store import jobs as queue
from spnbot.store import stats as stats_store
from spnbot.store.db import Database
from spnbot.store.group_commit import Transactional
from spnbot.store.plans import AssignedPlan
from spnbot.store.trials import Trials
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
    trials: int = 0  # free trials ever given
    trials_paid: int = 0  # of their customers, how many paid since


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
    payments: tuple[cards.RecentPayment, ...]
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
    def __init__(
        self,
        db: Database,
        store: Transactional[Tx],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db  # the statistics read through the session-level functions of store.stats
        self._store = store
        self._clock = clock
        self.reports = ReportService(db, clock=clock)

    async def create_code(
        self, code: str, days: int, limit: int, expires_at: datetime | None, created_by: int
    ) -> CodeResult:
        """A new code; an existing one is left exactly as it was (never silently reset)."""
        async with self._store.transaction() as tx:
            created = await tx.promos.create(
                normalize_code(code),
                days=days,
                max_uses=limit,
                expires_at=expires_at,
                created_by=created_by,
                now=self._clock(),
            )
        return CodeResult.CREATED if created else CodeResult.EXISTS

    async def give_days(
        self, admin_id: int, tg_id: int, days: int, source: str, plan: Tariff | None = None
    ) -> Given:
        """``source`` names the admin's message, so processing it twice grants once. With a
        ``plan``, the customer's panel user also gets that plan's limits."""
        assigned = AssignedPlan(plan.code, plan.limits) if plan is not None else None
        try:
            async with self._store.transaction() as tx:
                grant = await grant_days(
                    tx,
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
            trials = await Trials(session).stats()
            counted = await stats_store.counts(
                session, now=now, today=today, week_ago=now - timedelta(days=7)
            )
            return Stats(
                users_total=counted.users_total,
                users_today=counted.users_today,
                users_week=counted.users_week,
                active_subscriptions=counted.active_subscriptions,
                paid_today=_totals(await stats_store.paid_since(session, today)),
                days=days,
                paid_period=_totals(await stats_store.paid_since(session, since)),
                payers_period=await stats_store.payers_between(session, since, now),
                ever_paid=await stats_store.ever_paid(session),
                pending_payments=counted.pending_payments,
                jobs_waiting=jobs.get(JobStatus.PENDING, 0) + jobs.get(JobStatus.RUNNING, 0),
                jobs_failed=jobs.get(JobStatus.FAILED, 0),
                trials=trials.trials,
                trials_paid=trials.converted,
            )

    async def user_profile(self, tg_id: int) -> UserCard | None:
        async with self._db.transaction() as session:
            user = await cards.customer(session, tg_id)
            if user is None:
                return None
            payments = tuple(await cards.recent_payments(session, tg_id, RECENT_PAYMENTS))
            trial_at = await cards.trial_started(session, tg_id)
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


def _totals(rows: list[stats_store.PaidTotal]) -> tuple[ProviderTotal, ...]:
    """Per provider: how many paid, and the revenue in each currency it took."""
    counts: dict[str, int] = {}
    revenue: dict[str, list[Money]] = {}
    for row in rows:
        counts[row.provider] = counts.get(row.provider, 0) + row.count
        revenue.setdefault(row.provider, []).append(Money(row.amount_minor, row.currency))
    return tuple(ProviderTotal(p, counts[p], tuple(revenue[p])) for p in counts)
