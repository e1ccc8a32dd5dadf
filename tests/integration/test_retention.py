"""Retention keeps the bookkeeping tables bounded and never lets a notice repeat.

A year of traffic under a fake clock: customers pay (each "paid" signal replayed), lapse and
come back, reminders come due, admins broadcast; the jobs are run and the pruning runs daily
with the shortest retention allowed (1 day), so a reminder whose only guard was its done job
would be sent again while it is still due.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from spnbot.domain.money import Money
from spnbot.domain.states import JobStatus, PaymentStatus
from spnbot.payments.base import ProviderStatus, StatusReport
from spnbot.services.broadcast import BROADCAST, BroadcastHandler, BroadcastService
from spnbot.services.confirm import PaymentConfirmer
from spnbot.services.grants import PANEL_SYNC
from spnbot.services.notify import ADMIN_NOTICE, NOTIFY
from spnbot.services.reminders import ReminderService, stage_for
from spnbot.services.retention import RetentionService
from spnbot.store import jobs as queue
from spnbot.store import retention
from spnbot.store.db import Database
from spnbot.store.models import JOBS, Job, Payment, User
from spnbot.store.uow import Store

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
# Daily scans land once in each one-day reminder window ("1d", "expired") and several times in
# the "7d" one, which outlasts the retention: only the sent marks stop it from repeating.
REMINDER_DAYS = (7, 3, 1)
TICK = timedelta(hours=24)
TICKS_PER_DAY = 1
DAYS = int(__import__("os").environ.get("SIM_DAYS", "365"))
CUSTOMERS = 30
ADMIN = 900


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Outbox:
    """What would have reached Telegram, as the job handlers' side of the simulation."""

    def __init__(self) -> None:
        self.reminders: Counter[tuple[int, str, str]] = Counter()
        self.admin_paid: Counter[str] = Counter()
        self.syncs: Counter[int] = Counter()
        self.broadcast_texts: Counter[tuple[int, str]] = Counter()
        self.other = 0

    async def send_text(self, user_id: int, text: str) -> None:  # BroadcastHandler's sender
        self.broadcast_texts[(user_id, text)] += 1


async def _run_jobs(
    db: Database, outbox: Outbox, broadcasts: BroadcastHandler, now: datetime
) -> int:
    handled = 0
    while True:
        async with db.transaction() as session:
            jobs = await queue.claim(
                session, limit=500, lease=queue.Lease("test", timedelta(minutes=5))
            )
        if not jobs:
            return handled
        for job in jobs:
            payload = job.payload
            if job.kind == NOTIFY and payload["template"].startswith("reminder_"):
                expires_at = payload["params"]["expires_at"]
                stage = stage_for(datetime.fromisoformat(expires_at) - now, REMINDER_DAYS)
                outbox.reminders[(payload["user_id"], f"{stage}", expires_at)] += 1
            elif job.kind == ADMIN_NOTICE and payload["template"] == "admin_payment":
                outbox.admin_paid[payload["params"]["payment"]] += 1
            elif job.kind == PANEL_SYNC:
                outbox.syncs[payload["grant_id"]] += 1
            elif job.kind == BROADCAST:
                await broadcasts(job)
            else:
                outbox.other += 1
        async with db.transaction() as session:
            await queue.finish_many(session, [job.id for job in jobs])
        handled += len(jobs)
        if len(jobs) < 500:
            return handled


async def _pay(db: Database, confirmer: PaymentConfirmer, user_id: int, n: int, now: datetime):
    public_id = f"spn-sim-{user_id}-{n}"
    async with db.transaction() as session:
        session.add(
            Payment(
                public_id=public_id,
                user_id=user_id,
                provider="oneplat",
                method="card",
                tariff_code="1m",
                days=30,
                amount_minor=10000,
                currency="RUB",
                status=PaymentStatus.PENDING,
                external_id=f"guid-{public_id}",
                details={},
                created_at=now,
                updated_at=now,
            )
        )
    report = StatusReport(f"guid-{public_id}", public_id, ProviderStatus.PAID, Money.rub(100))
    # The provider's webhook twice, then the reconciler: one payment, one set of follow-ups.
    for via in ("webhook", "webhook", "reconciler"):
        await confirmer.apply("oneplat", report, via=via)
    return public_id


async def test_a_year_of_traffic_stays_bounded_and_nothing_repeats(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(queue, "utcnow", clock)  # the queue's own timestamps follow the clock
    rng = random.Random(13)
    outbox = Outbox()
    store = Store(db)
    confirmer = PaymentConfirmer(store, referral_bonus_days=7, clock=clock)
    reminders = ReminderService(store, days_before=REMINDER_DAYS, clock=clock)
    broadcasts = BroadcastService(store, clock=clock)
    handler = BroadcastHandler(store, outbox, rate_per_sec=1e6, clock=clock)
    pruner = RetentionService(store, days=1, pause=0, clock=clock)
    async with db.transaction() as session:
        for uid in range(1, CUSTOMERS + 1):
            session.add(User(tg_id=uid, language="ru", created_at=START))
        session.add(User(tg_id=ADMIN, language="ru", created_at=START))

    # Each customer pays on their own day; later ones renew early, some lapse for weeks.
    next_payment = {
        uid: START + timedelta(hours=rng.randrange(0, 24 * 40)) for uid in range(1, CUSTOMERS + 1)
    }
    paid: list[str] = []
    peaks: Counter[str] = Counter()
    handled_per_day: list[int] = []
    pruned = 0
    for day in range(DAYS):
        handled_today = 0
        for tick in range(TICKS_PER_DAY):
            clock.now = START + timedelta(days=day) + tick * TICK
            for uid, when in next_payment.items():
                if when <= clock.now:
                    paid.append(await _pay(db, confirmer, uid, len(paid), clock.now))
                    # Renew 0-2 days before the end, or come back after a 0-20 day lapse.
                    offset = rng.choice([-2, -1, 0, 3, 10, 20])
                    next_payment[uid] = clock.now + timedelta(days=30 + offset)
            if day % 30 == 5 and tick == 0:
                await broadcasts.start(ADMIN, "all", f"news of day {day}")
            await reminders.run_once()
            handled_today += await _run_jobs(db, outbox, handler, clock.now)
        handled_per_day.append(handled_today)
        report = await pruner.run_once()
        pruned += report.deleted
        assert report.largest_batch <= 500
        async with db.transaction() as session:
            sizes = await retention.table_sizes(session)
        for table, rows in sizes.items():
            peaks[table] = max(peaks[table], rows)

    total_jobs = sum(handled_per_day)
    busiest_day = max(handled_per_day)
    print(
        f"\n{len(paid)} payments, {total_jobs} jobs, {sum(outbox.reminders.values())} reminders,"
        f" pruned {pruned} rows; peak rows {dict(peaks)}; busiest day {busiest_day} jobs"
    )
    # Exactly once, a year on: no reminder, admin notice, sync or broadcast message repeats.
    assert outbox.reminders and max(outbox.reminders.values()) == 1, outbox.reminders.most_common(3)
    stages = Counter(stage for _, stage, _ in outbox.reminders)
    assert min(stages["7d"], stages["3d"], stages["1d"], stages["expired"]) > 30, stages
    assert sorted(outbox.admin_paid) == sorted(paid)
    assert set(outbox.admin_paid.values()) == {1}
    assert len(outbox.syncs) == len(paid) and set(outbox.syncs.values()) == {1}
    assert len(outbox.broadcast_texts) == 12 * (CUSTOMERS + 1)
    assert set(outbox.broadcast_texts.values()) == {1}
    # Bounded: what one retention period and the day in hand hold, not a year's worth.
    assert total_jobs > 20 * busiest_day
    assert peaks["jobs"] <= 3 * busiest_day + 1, (peaks, busiest_day)
    assert peaks["broadcasts"] <= 2
    assert peaks["sent_marks"] <= 6 * CUSTOMERS, peaks
    async with db.transaction() as session:
        payments = (await session.execute(select(func.count()).select_from(Payment))).scalar()
    assert payments == len(paid)  # payments and grants are records, never pruned


async def test_pruning_spares_waiting_failed_recent_and_newest_jobs(db: Database) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    rows = [
        (JobStatus.DONE, old),
        (JobStatus.FAILED, old),
        (JobStatus.PENDING, old),
        (JobStatus.RUNNING, old),
        (JobStatus.DONE, recent),
        (JobStatus.DONE, old),
        (JobStatus.DONE, old),  # the newest row: its id must not be handed out again
    ]
    async with db.transaction() as session:
        for i, (status, at) in enumerate(rows):
            session.add(
                Job(
                    kind="probe",
                    payload={"i": i},
                    dedup_key=f"probe:{i}",
                    status=status,
                    attempts=0,
                    max_attempts=3,
                    run_after=at,
                    created_at=at,
                    updated_at=at,
                )
            )
    report = await RetentionService(Store(db), days=30, batch=2, pause=0).run_once()
    assert report.jobs == 2 and report.largest_batch <= 2
    async with db.transaction() as session:
        left = (await session.execute(select(JOBS.c.payload).order_by(JOBS.c.id))).scalars()
        assert [p["i"] for p in left] == [1, 2, 3, 4, 6]
        top = (await session.execute(select(func.max(JOBS.c.id)))).scalar()
        await queue.enqueue(session, "probe", {"i": 7}, dedup_key="probe:7")
        newest = (await session.execute(select(func.max(JOBS.c.id)))).scalar()
    assert newest == top + 1


@pytest.mark.postgres
async def test_pruning_100k_done_jobs_on_postgres_in_short_batches(pg_database_url: str) -> None:
    from spnbot.config import database_url_to_sqlalchemy
    from spnbot.store import migrate

    db = Database(database_url_to_sqlalchemy(pg_database_url))
    try:
        await migrate.upgrade(db)
        async with db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO jobs (kind, payload, dedup_key, status, attempts, max_attempts,"
                    " run_after, created_at, updated_at)"
                    " SELECT 'notify', '{}'::json, 'old:' || g, 'done', 1, 12, t, t, t"
                    " FROM generate_series(1, 100000) AS g,"
                    " LATERAL (SELECT now() - interval '40 days' + g * interval '1 second') AS x(t)"
                )
            )
            await session.execute(text("ANALYZE jobs"))
        started = time.perf_counter()
        report = await RetentionService(Store(db), days=30, pause=0).run_once()
        took = time.perf_counter() - started
        print(
            f"\npruned {report.jobs} of 100000 done jobs in {report.batches} batches, {took:.1f}s;"
            f" longest batch {report.longest_batch * 1000:.1f} ms,"
            f" largest {report.largest_batch} rows"
        )
        assert report.jobs == 99_999  # the newest row stays
        assert report.largest_batch <= 500
        assert report.batches >= 200
        async with db.transaction() as session:
            assert (await session.execute(select(func.count()).select_from(Job))).scalar() == 1
    finally:
        await db.dispose()
