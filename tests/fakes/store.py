"""An in-memory storage port: the same repositories as ``spnbot.store.uow.Tx``, in dicts.

A transaction works on a copy of the state and publishes it on success, so a failed unit of
work leaves nothing behind (group commit relies on that). The fake keeps the guards the real
statements have (compare-and-set, unique ledger sources, dedup keys); tests/integration/
test_repositories.py runs one contract against this fake and the real SQL on both databases.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from spnbot.domain.money import Money
from spnbot.domain.settle import PAYABLE
from spnbot.domain.states import GrantKind, JobStatus, PaymentStatus
from spnbot.store.accounts import GrantTarget, PanelLink, SyncState
from spnbot.store.broadcasts import DONE, RUNNING, Audience, BroadcastRow, Step, Totals
from spnbot.store.customers import Customer, NewCustomer
from spnbot.store.drift import CustomerRecord
from spnbot.store.jobs import ClaimedJob, Lease, NewJob
from spnbot.store.ledger import LedgerEntry
from spnbot.store.panel_events import Customer as PanelCustomer
from spnbot.store.payments import NewPayment, PaymentRow, Pending
from spnbot.store.plans import AssignedPlan
from spnbot.store.promos import PromoRow
from spnbot.store.trials import TrialStats

HUNDRED_RUB = Money.rub(100)


@dataclass
class FakeUser:
    tg_id: int
    language: str = "ru"
    expires_at: datetime | None = None
    referrer_id: int | None = None
    panel_ref: str | None = None
    subscription_url: str | None = None
    blocked_at: datetime | None = None
    panel_synced_at: datetime | None = None
    plan: AssignedPlan | None = None
    username: str | None = None
    first_name: str | None = None
    terms_accepted_at: datetime | None = None


@dataclass
class FakeBroadcast:
    row: BroadcastRow
    totals: Totals = field(default_factory=lambda: Totals(0, 0, 0))
    finished_at: datetime | None = None


@dataclass
class FakeJob:
    id: int
    kind: str
    payload: dict[str, Any]
    dedup_key: str | None
    status: str
    attempts: int
    run_after: datetime
    locked_until: datetime | None


@dataclass
class State:
    payments: dict[int, PaymentRow] = field(default_factory=dict)
    charge_ids: dict[int, str] = field(default_factory=dict)
    deadlines: dict[int, datetime | None] = field(default_factory=dict)
    mismatch_reported: dict[int, Money | None] = field(default_factory=dict)
    grants: list[tuple[int, LedgerEntry]] = field(default_factory=list)
    jobs: dict[int, FakeJob] = field(default_factory=dict)
    users: dict[int, FakeUser] = field(default_factory=dict)
    referrals: dict[int, tuple[int, datetime | None]] = field(default_factory=dict)
    deliveries: dict[str, datetime] = field(default_factory=dict)  # panel webhook keys
    marks: dict[str, datetime] = field(default_factory=dict)  # sent marks: key → keep until
    promos: dict[str, PromoRow] = field(default_factory=dict)
    redemptions: set[tuple[str, int]] = field(default_factory=set)
    broadcasts: dict[int, FakeBroadcast] = field(default_factory=dict)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakePayments:
    def __init__(self, state: State) -> None:
        self.s = state

    def _by_public(self, public_id: str) -> PaymentRow | None:
        return next((p for p in self.s.payments.values() if p.public_id == public_id), None)

    def _put(self, row: PaymentRow, **changes: Any) -> None:
        self.s.payments[row.id] = replace(row, **changes)

    async def add(self, payment: NewPayment, now: datetime) -> None:
        if self._by_public(payment.public_id) is not None:
            raise ValueError("duplicate public id")
        pid = self.s.new_id()
        self.s.payments[pid] = PaymentRow(
            pid,
            payment.public_id,
            payment.user_id,
            payment.provider,
            payment.method,
            payment.tariff_code,
            payment.days,
            payment.amount,
            PaymentStatus.PENDING,
            None,
            None,
            {},
            now,
        )

    async def get(self, public_id: str, *, user_id: int | None = None) -> PaymentRow | None:
        row = self._by_public(public_id)
        return row if row and (user_id is None or row.user_id == user_id) else None

    async def get_of_provider(
        self, public_id: str, provider: str, user_id: int
    ) -> PaymentRow | None:
        row = self._by_public(public_id)
        return row if row and row.provider == provider and row.user_id == user_id else None

    async def candidates(
        self, provider: str, external_ids: Iterable[str], order_ids: Iterable[str]
    ) -> list[PaymentRow]:
        ext, orders = set(external_ids), set(order_ids)
        return [
            p
            for p in self.s.payments.values()
            if p.provider == provider and (p.external_id in ext or p.public_id in orders)
        ]

    async def move_to_paid(self, ids: Sequence[int], *, via: str, now: datetime) -> set[int]:
        moved = set()
        for pid in ids:
            row = self.s.payments[pid]
            if row.status in PAYABLE:
                self._put(row, status=PaymentStatus.PAID, paid_at=now, paid_via=via)
                moved.add(pid)
        return moved

    async def learn_external_id(self, payment_id: int, external_id: str) -> None:
        row = self.s.payments[payment_id]
        if row.external_id is None:
            self._put(row, external_id=external_id)

    async def flag_mismatch(
        self, payment_id: int, *, reported: Money | None, reason: str, now: datetime
    ) -> bool:
        row = self.s.payments[payment_id]
        if row.status not in PAYABLE:
            return False
        self._put(row, status=PaymentStatus.MISMATCH)
        self.s.mismatch_reported[payment_id] = reported
        return True

    async def close_pending(
        self, payment_id: int, target: PaymentStatus, *, reason: str | None, now: datetime
    ) -> bool:
        row = self.s.payments[payment_id]
        if row.status is not PaymentStatus.PENDING:
            return False
        self._put(row, status=target)
        return True

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
        row = self._by_public(public_id)
        assert row is not None
        self._put(row, external_id=external_id, pay_url=pay_url, details=dict(details))
        self.s.deadlines[row.id] = deadline

    async def fail_pending(self, public_id: str, *, reason: str, now: datetime) -> None:
        row = self._by_public(public_id)
        if row is not None and row.status is PaymentStatus.PENDING:
            self._put(row, status=PaymentStatus.FAILED)

    async def pending(self) -> list[Pending]:
        return [
            Pending(
                p.provider, p.external_id, p.public_id, p.created_at, self.s.deadlines.get(p.id)
            )
            for p in sorted(self.s.payments.values(), key=lambda p: p.id)
            if p.status is PaymentStatus.PENDING
        ]

    async def expire_pending(self, public_ids: Sequence[str], now: datetime) -> int:
        n = 0
        for public_id in public_ids:
            row = self._by_public(public_id)
            if row is not None and row.status is PaymentStatus.PENDING:
                self._put(row, status=PaymentStatus.EXPIRED)
                n += 1
        return n

    async def keep_charge_id(
        self, public_id: str, provider: str, user_id: int, charge_id: str
    ) -> None:
        row = await self.get_of_provider(public_id, provider, user_id)
        if row is not None:
            self.s.charge_ids.setdefault(row.id, charge_id)


class FakeLedger:
    def __init__(self, state: State) -> None:
        self.s = state

    async def record(
        self, entries: Sequence[LedgerEntry], now: datetime
    ) -> dict[tuple[str, str], int]:
        taken = {(str(e.kind), e.source) for _, e in self.s.grants}
        out: dict[tuple[str, str], int] = {}
        for entry in entries:
            key = (str(entry.kind), entry.source)
            if key in taken or key in out:
                continue
            gid = self.s.new_id()
            self.s.grants.append((gid, entry))
            out[key] = gid
        return out

    async def exists(self, kind: GrantKind, source: str) -> bool:
        return any(e.kind == kind and e.source == source for _, e in self.s.grants)


class FakeJobs:
    def __init__(self, state: State, clock: Any) -> None:
        self.s = state
        self._clock = clock

    async def add(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        dedup_key: str | None = None,
        delay: timedelta | None = None,
    ) -> bool:
        return (await self.add_many([NewJob(kind, payload, dedup_key, delay)]))[0] is not None

    async def add_many(
        self, jobs: Sequence[NewJob], *, claim_lease: Lease | None = None
    ) -> list[ClaimedJob | None]:
        now = self._clock()
        keys = {j.dedup_key for j in self.s.jobs.values() if j.dedup_key}
        out: list[ClaimedJob | None] = []
        for job in jobs:
            if job.dedup_key and job.dedup_key in keys:
                out.append(None)
                continue
            if job.dedup_key:
                keys.add(job.dedup_key)
            jid = self.s.new_id()
            claimed = claim_lease is not None
            self.s.jobs[jid] = FakeJob(
                jid,
                job.kind,
                copy.deepcopy(job.payload),
                job.dedup_key,
                JobStatus.RUNNING if claimed else JobStatus.PENDING,
                int(claimed),
                now + (job.delay or timedelta(0)),
                now + claim_lease.duration if claim_lease is not None else None,
            )
            out.append(ClaimedJob(jid, job.kind, job.payload, int(claimed), job.max_attempts))
        return out

    async def finish_many(self, job_ids: Sequence[int]) -> None:
        for jid in job_ids:
            self.s.jobs[jid].status = JobStatus.DONE
            self.s.jobs[jid].locked_until = None

    async def extend_lease(self, job_id: int, lease: timedelta) -> None:
        job = self.s.jobs.get(job_id)
        if job is not None and job.status == JobStatus.RUNNING:
            job.locked_until = self._clock() + lease

    async def release(self, job_id: int) -> None:
        job = self.s.jobs.get(job_id)
        if job is not None and job.status == JobStatus.RUNNING:
            job.status, job.run_after, job.locked_until = JobStatus.PENDING, self._clock(), None
            job.attempts -= 1


class FakeAccounts:
    def __init__(self, state: State) -> None:
        self.s = state

    async def lock_for_grant(self, user_ids: Iterable[int]) -> dict[int, GrantTarget]:
        return {
            uid: GrantTarget(u.expires_at, u.referrer_id, u.panel_ref, u.plan)
            for uid in sorted(set(user_ids))
            if (u := self.s.users.get(uid)) is not None
        }

    async def set_expiries(self, expiries: Mapping[int, datetime]) -> None:
        for uid, at in expiries.items():
            self.s.users[uid].expires_at = at

    async def set_grants(self, granted: Mapping[int, tuple[datetime, AssignedPlan | None]]) -> None:
        for uid, (at, plan) in granted.items():
            self.s.users[uid].expires_at, self.s.users[uid].plan = at, plan

    async def sync_states(self, user_ids: Iterable[int]) -> dict[int, SyncState]:
        return {
            uid: SyncState(u.expires_at, u.panel_ref, u.language, u.blocked_at is not None, u.plan)
            for uid in set(user_ids)
            if (u := self.s.users.get(uid)) is not None
        }

    async def record_sync(
        self, links: Sequence[PanelLink], untouched: Sequence[int], now: datetime
    ) -> None:
        for link in links:
            user = self.s.users[link.user_id]
            user.panel_ref, user.subscription_url = link.panel_ref, link.subscription_url
            user.panel_synced_at = now
        for uid in untouched:
            self.s.users[uid].panel_synced_at = now

    async def mark_blocked(self, user_ids: Sequence[int], now: datetime) -> None:
        for uid in user_ids:  # like the UPDATE: an unknown id changes nothing
            if (user := self.s.users.get(uid)) is not None:
                user.blocked_at = now

    async def due_for_reminder(
        self, *, ended_after: datetime, ending_by: datetime
    ) -> list[tuple[int, datetime, str | None]]:
        return [
            (u.tg_id, u.expires_at, u.plan.code if u.plan else None)
            for u in self.s.users.values()
            if u.expires_at is not None
            and ended_after < u.expires_at <= ending_by
            and u.blocked_at is None
        ]


class FakeReferrals:
    def __init__(self, state: State) -> None:
        self.s = state

    async def reward_once(self, user_ids: Sequence[int], now: datetime) -> list[tuple[int, int]]:
        out = []
        for uid in user_ids:
            entry = self.s.referrals.get(uid)
            if entry is not None and entry[1] is None:
                self.s.referrals[uid] = (entry[0], now)
                out.append((uid, entry[0]))
        return sorted(out)

    async def add(self, referred_id: int, referrer_id: int, now: datetime) -> None:
        if referred_id in self.s.referrals:  # the primary key
            raise ValueError(f"user {referred_id} already has a referrer")
        if referred_id not in self.s.users or referrer_id not in self.s.users:  # foreign keys
            raise LookupError("a referral names users who exist")
        self.s.referrals[referred_id] = (referrer_id, None)

    async def counts(self, referrer_id: int) -> tuple[int, int]:
        mine = [rewarded for ref, rewarded in self.s.referrals.values() if ref == referrer_id]
        return len(mine), sum(1 for rewarded in mine if rewarded is not None)


class FakeCustomers:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add_if_absent(self, customer: NewCustomer, now: datetime) -> bool:
        if customer.tg_id in self.s.users:
            return False
        self.s.users[customer.tg_id] = FakeUser(
            customer.tg_id,
            customer.language,
            username=customer.username,
            first_name=customer.first_name,
        )
        return True

    async def exists(self, tg_id: int) -> bool:
        return tg_id in self.s.users

    async def get(self, tg_id: int) -> Customer | None:
        u = self.s.users.get(tg_id)
        if u is None:
            return None
        return Customer(
            u.tg_id,
            u.language,
            u.terms_accepted_at,
            u.expires_at,
            u.subscription_url,
            u.panel_ref,
            u.referrer_id,
            u.blocked_at,
            u.plan.code if u.plan else None,
            u.plan.limits.to_json() if u.plan else None,
        )

    async def set_referrer(self, tg_id: int, referrer_id: int) -> None:
        if (user := self.s.users.get(tg_id)) is not None:
            user.referrer_id = referrer_id

    async def refresh_contact(
        self, tg_id: int, *, username: str | None, first_name: str | None
    ) -> None:
        if (user := self.s.users.get(tg_id)) is not None:
            user.username, user.first_name, user.blocked_at = username, first_name, None

    async def accept_terms(self, tg_id: int, now: datetime) -> None:
        user = self.s.users.get(tg_id)
        if user is not None and user.terms_accepted_at is None:
            user.terms_accepted_at = now

    async def languages(self, tg_ids: Iterable[int]) -> dict[int, str]:
        return {uid: u.language for uid in set(tg_ids) if (u := self.s.users.get(uid)) is not None}


class FakePromos:
    def __init__(self, state: State) -> None:
        self.s = state

    async def get(self, code: str) -> PromoRow | None:
        return self.s.promos.get(code)

    async def claim(self, code: str, user_id: int, now: datetime) -> bool:
        if code not in self.s.promos or user_id not in self.s.users:  # foreign keys
            raise LookupError("a redemption names a code and a user that exist")
        if (code, user_id) in self.s.redemptions:  # unique (code, user_id)
            return False
        self.s.redemptions.add((code, user_id))
        return True

    async def take_use(self, code: str, now: datetime) -> int | None:
        promo = self.s.promos.get(code)
        if (
            promo is None
            or not promo.active
            or promo.used_count >= promo.max_uses
            or (promo.expires_at is not None and promo.expires_at <= now)
        ):
            return None
        self.s.promos[code] = replace(promo, used_count=promo.used_count + 1)
        return promo.days


class FakeBroadcasts:
    def __init__(self, state: State) -> None:
        self.s = state

    async def add(self, created_by: int, audience: Audience, text: str, now: datetime) -> int:
        bid = self.s.new_id()
        self.s.broadcasts[bid] = FakeBroadcast(
            BroadcastRow(bid, created_by, Audience(audience), text, RUNNING, 0, now)
        )
        return bid

    async def get(self, broadcast_id: int) -> BroadcastRow | None:
        found = self.s.broadcasts.get(broadcast_id)
        return found.row if found else None

    async def recipients(self, row: BroadcastRow, *, after: int, limit: int) -> list[int]:
        def wanted(u: FakeUser) -> bool:
            if u.tg_id <= after or u.blocked_at is not None:
                return False
            if row.audience == Audience.ACTIVE:
                return u.expires_at is not None and u.expires_at > row.created_at
            if row.audience == Audience.EXPIRED:
                return u.expires_at is not None and u.expires_at <= row.created_at
            return True

        return sorted(uid for uid, u in self.s.users.items() if wanted(u))[:limit]

    async def advance(self, broadcast_id: int, step: Step) -> Totals | None:
        found = self.s.broadcasts.get(broadcast_id)
        if found is None or found.row.status != RUNNING or found.row.cursor != step.after:
            return None
        t = found.totals
        found.totals = Totals(
            t.delivered + step.delivered, t.blocked + step.blocked, t.failed + step.failed
        )
        found.row = replace(found.row, cursor=step.to)
        return found.totals

    async def finish(self, broadcast_id: int, now: datetime) -> Totals | None:
        found = self.s.broadcasts.get(broadcast_id)
        if found is None or found.row.status != RUNNING:
            return None
        found.row = replace(found.row, status=DONE)
        found.finished_at = now
        return found.totals


class FakePlans:
    def __init__(self, state: State) -> None:
        self.s = state

    async def keep_snapshot(self, public_id: str, limits: Any) -> None:
        row = next((p for p in self.s.payments.values() if p.public_id == public_id), None)
        if row is not None:
            self.s.payments[row.id] = replace(row, plan_limits=limits)


class FakeTrials:
    def __init__(self, state: State) -> None:
        self.s = state

    async def used(self, user_id: int) -> bool:
        return any(e.kind == GrantKind.TRIAL and e.source == str(user_id) for _, e in self.s.grants)

    async def stats(self) -> TrialStats:
        tried = {e.user_id for _, e in self.s.grants if e.kind == GrantKind.TRIAL}
        paid = {e.user_id for _, e in self.s.grants if e.kind == GrantKind.PAYMENT}
        return TrialStats(len(tried), len(tried & paid))


class FakePanelEvents:
    def __init__(self, state: State) -> None:
        self.s = state

    async def remember(self, key: str, event: str, now: datetime) -> bool:
        if key in self.s.deliveries:
            return False
        self.s.deliveries[key] = now
        return True

    async def seen(self, key: str) -> bool:
        return key in self.s.deliveries

    async def prune(self, before: datetime) -> int:
        old = [k for k, at in self.s.deliveries.items() if at < before]
        for key in old:
            del self.s.deliveries[key]
        return len(old)

    def _first(self, match: Any) -> PanelCustomer | None:
        for uid in sorted(self.s.users):
            u = self.s.users[uid]
            if match(u):
                return PanelCustomer(u.tg_id, u.panel_ref, u.expires_at)
        return None

    async def by_panel_ref(self, refs: Sequence[str]) -> PanelCustomer | None:
        return self._first(lambda u: u.panel_ref is not None and u.panel_ref in refs)

    async def by_telegram_id(self, tg_id: int) -> PanelCustomer | None:
        return self._first(lambda u: u.tg_id == tg_id)

    async def by_short_uuid(self, short_uuid: str) -> PanelCustomer | None:
        end = "/" + short_uuid
        return self._first(lambda u: (u.subscription_url or "").endswith(end))

    async def forget_panel_user(self, tg_id: int, panel_ref: str) -> bool:
        user = self.s.users.get(tg_id)
        if user is None or user.panel_ref != panel_ref:
            return False
        user.panel_ref = user.subscription_url = None
        return True

    async def keep_link(self, tg_id: int, panel_ref: str, subscription_url: str) -> None:
        user = self.s.users.get(tg_id)
        if user is not None and user.panel_ref == panel_ref:
            user.subscription_url = subscription_url


class FakeDrift:
    def __init__(self, state: State) -> None:
        self.s = state

    def _record(self, u: FakeUser) -> CustomerRecord:
        return CustomerRecord(u.tg_id, u.expires_at, u.panel_ref, u.subscription_url)

    async def customers_after(self, after: int, limit: int) -> list[CustomerRecord]:
        found = [
            self._record(u)
            for uid, u in sorted(self.s.users.items())
            if uid > after and (u.expires_at is not None or u.panel_ref is not None)
        ]
        return found[:limit]

    async def customer(self, user_id: int) -> CustomerRecord | None:
        user = self.s.users.get(user_id)
        return self._record(user) if user is not None else None

    async def relink(
        self, user_id: int, expected_ref: str | None, new_ref: str | None, url: str | None
    ) -> bool:
        user = self.s.users.get(user_id)
        if user is None or user.panel_ref != expected_ref:
            return False
        user.panel_ref, user.subscription_url = new_ref, url
        return True


class FakeTx:
    def __init__(self, state: State, clock: Any) -> None:
        self.payments = FakePayments(state)
        self.ledger = FakeLedger(state)
        self.jobs = FakeJobs(state, clock)
        self.accounts = FakeAccounts(state)
        self.referrals = FakeReferrals(state)
        self.plans = FakePlans(state)
        self.trials = FakeTrials(state)
        self.panel_events = FakePanelEvents(state)
        self.marks = FakeMarks(state)
        self.drift = FakeDrift(state)
        self.customers = FakeCustomers(state)
        self.promos = FakePromos(state)
        self.broadcasts = FakeBroadcasts(state)


class FakeMarks:
    def __init__(self, state: State) -> None:
        self.s = state

    async def mark_new(self, marks: Sequence[tuple[str, datetime]], *, now: datetime) -> set[str]:
        fresh = {key for key, _ in marks if key not in self.s.marks}
        for key, until in marks:
            self.s.marks.setdefault(key, until)
        return fresh


class FakeStore:
    """``transaction()`` like ``spnbot.store.uow.Store``; ``state`` is what was committed."""

    def __init__(self, clock: Any) -> None:
        self.state = State()
        self.clock = clock
        self.transactions = 0
        self.tx_factory = FakeTx  # a test may swap in a Tx whose repository misbehaves
        self._lock = asyncio.Lock()  # one writer at a time, like SQLite's BEGIN IMMEDIATE

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._lock:
            self.transactions += 1
            working = copy.deepcopy(self.state)
            yield self.tx_factory(working, self.clock)
            self.state = working  # only on success: an exception skips this line

    # -- set-up helpers for tests --------------------------------------------------------------

    def add_user(self, tg_id: int, **fields: Any) -> FakeUser:
        user = self.state.users[tg_id] = FakeUser(tg_id, **fields)
        return user

    def add_payment(
        self,
        user_id: int,
        *,
        public_id: str,
        provider: str = "oneplat",
        amount: Money = HUNDRED_RUB,
        days: int = 30,
        status: PaymentStatus = PaymentStatus.PENDING,
        external_id: str | None = None,
        created_at: datetime | None = None,
    ) -> PaymentRow:
        pid = self.state.new_id()
        row = PaymentRow(
            pid,
            public_id,
            user_id,
            provider,
            "card",
            "1m",
            days,
            amount,
            status,
            external_id,
            None,
            {},
            created_at or self.clock(),
        )
        self.state.payments[pid] = row
        return row

    def add_promo(
        self,
        code: str,
        *,
        days: int = 7,
        max_uses: int = 10,
        expires_at: datetime | None = None,
        active: bool = True,
    ) -> PromoRow:
        promo = self.state.promos[code] = PromoRow(code, days, max_uses, 0, expires_at, active)
        return promo

    def payment(self, public_id: str) -> PaymentRow:
        return next(p for p in self.state.payments.values() if p.public_id == public_id)

    def jobs_of(self, kind: str) -> list[FakeJob]:
        return [j for j in self.state.jobs.values() if j.kind == kind]

    def grants_of(self, kind: GrantKind) -> list[LedgerEntry]:
        return [e for _, e in self.state.grants if e.kind == kind]
