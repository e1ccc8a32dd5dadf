"""One contract for the storage port, run against the in-memory fake and the real SQL on SQLite
and PostgreSQL: the guards the unit tests rely on hold in the real statements too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spnbot.config import database_url_to_sqlalchemy
from spnbot.domain.money import Money
from spnbot.domain.states import GrantKind, PaymentStatus
from spnbot.domain.tariffs import PlanLimits
from spnbot.store import migrate
from spnbot.store.accounts import PanelLink
from spnbot.store.broadcasts import Audience, Step, Totals
from spnbot.store.customers import NewCustomer
from spnbot.store.db import Database
from spnbot.store.jobs import Lease, NewJob
from spnbot.store.ledger import LedgerEntry
from spnbot.store.models import PROMO_CODES, USERS, Referral
from spnbot.store.panel_events import Customer
from spnbot.store.payments import NewPayment
from spnbot.store.plans import AssignedPlan
from spnbot.store.uow import Store
from tests.conftest import create_pg_database, drop_pg_database
from tests.fakes.store import FakeStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Port:
    """A store plus the two set-up steps the port itself does not offer."""

    def __init__(self, store: Any, db: Database | None) -> None:
        self.store = store
        self.db = db

    async def add_user(self, tg_id: int) -> None:
        if self.db is None:
            self.store.add_user(tg_id)
            return
        async with self.db.transaction() as session:
            await session.execute(USERS.insert().values(tg_id=tg_id, language="ru", created_at=NOW))

    async def add_referral(self, referred: int, referrer: int) -> None:
        if self.db is None:
            self.store.state.referrals[referred] = (referrer, None)
            return
        async with self.db.transaction() as session:
            session.add(Referral(referred_id=referred, referrer_id=referrer, created_at=NOW))

    async def add_promo(
        self,
        code: str,
        *,
        max_uses: int = 2,
        expires_at: datetime | None = None,
        active: bool = True,
    ) -> None:
        if self.db is None:
            self.store.add_promo(
                code, days=5, max_uses=max_uses, expires_at=expires_at, active=active
            )
            return
        async with self.db.transaction() as session:
            await session.execute(
                PROMO_CODES.insert().values(
                    code=code,
                    days=5,
                    max_uses=max_uses,
                    used_count=0,
                    expires_at=expires_at,
                    active=active,
                    created_at=NOW,
                )
            )

    async def expire(self, tg_id: int, at: datetime) -> None:
        async with self.store.transaction() as tx:
            await tx.accounts.set_expiries({tg_id: at})

    async def payment(self, public_id: str, user_id: int = 1, provider: str = "oneplat") -> int:
        async with self.store.transaction() as tx:
            await tx.payments.add(
                NewPayment(public_id, user_id, provider, "card", "1m", 30, Money.rub(100)), NOW
            )
            await tx.payments.set_invoice(
                public_id,
                external_id=f"g-{public_id}",
                pay_url=None,
                details={},
                deadline=None,
                now=NOW,
            )
            row = await tx.payments.get(public_id)
        assert row is not None
        return row.id


@pytest.fixture(params=["fake", "sqlite", "postgres"])
async def port(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Port]:
    if request.param == "fake":
        yield Port(FakeStore(lambda: NOW), None)
        return
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'repo.sqlite3'}"
    else:
        name, url = await create_pg_database()
    db = Database(database_url_to_sqlalchemy(url))
    await migrate.upgrade(db)
    try:
        port = Port(Store(db), db)
        await port.add_user(1)
        await port.add_user(2)
        yield port
    finally:
        await db.dispose()
        if name:
            await drop_pg_database(name)


@pytest.fixture(autouse=True)
async def _users(port: Port) -> None:
    if port.db is None:
        await port.add_user(1)
        await port.add_user(2)


async def test_compare_and_set_moves_a_payment_to_paid_once(port: Port) -> None:
    pid = await port.payment("spn-a")
    async with port.store.transaction() as tx:
        assert await tx.payments.move_to_paid([pid], via="webhook", now=NOW) == {pid}
    async with port.store.transaction() as tx:
        assert await tx.payments.move_to_paid([pid], via="reconciler", now=NOW) == set()
        row = await tx.payments.get("spn-a")
    assert row is not None and row.status is PaymentStatus.PAID and row.paid_via == "webhook"


async def test_a_held_payment_is_not_moved_to_paid(port: Port) -> None:
    pid = await port.payment("spn-a")
    async with port.store.transaction() as tx:
        assert await tx.payments.flag_mismatch(pid, reported=Money.rub(1), reason="x", now=NOW)
        assert not await tx.payments.flag_mismatch(pid, reported=Money.rub(1), reason="x", now=NOW)
        assert await tx.payments.move_to_paid([pid], via="webhook", now=NOW) == set()
        assert not await tx.payments.close_pending(pid, PaymentStatus.FAILED, reason=None, now=NOW)


@pytest.mark.parametrize("given_up", [PaymentStatus.FAILED, PaymentStatus.EXPIRED])
async def test_a_given_up_payment_can_still_be_paid(port: Port, given_up: PaymentStatus) -> None:
    pid = await port.payment("spn-a")
    async with port.store.transaction() as tx:
        assert await tx.payments.close_pending(pid, given_up, reason="late", now=NOW)
        assert not await tx.payments.close_pending(pid, given_up, reason="late", now=NOW)
        assert await tx.payments.move_to_paid([pid], via="reconciler", now=NOW) == {pid}


async def test_the_ledger_takes_each_source_once(port: Port) -> None:
    entry = LedgerEntry(1, GrantKind.PAYMENT, "spn-a", 30, None, NOW + timedelta(days=30))
    other = LedgerEntry(1, GrantKind.GIFT, "spn-a", 3, None, NOW + timedelta(days=3))
    async with port.store.transaction() as tx:
        first = await tx.ledger.record([entry], NOW)
    async with port.store.transaction() as tx:
        again = await tx.ledger.record([entry, other], NOW)
        assert await tx.ledger.exists(GrantKind.PAYMENT, "spn-a")
    assert list(first) == [("payment", "spn-a")]
    assert list(again) == [("gift", "spn-a")]  # same source, other kind: its own grant


async def test_job_dedup_keys_are_used_once(port: Port) -> None:
    async with port.store.transaction() as tx:
        assert await tx.jobs.add("notify", {"a": 1}, dedup_key="k1")
        assert not await tx.jobs.add("notify", {"a": 2}, dedup_key="k1")
        added = await tx.jobs.add_many(
            [NewJob("sync", {}, "k2"), NewJob("sync", {}, "k1")],
            claim_lease=Lease("test", timedelta(minutes=2)),
        )
    assert added[0] is not None and added[0].attempts == 1 and added[1] is None


async def test_lookups_filter_by_provider_and_customer(port: Port) -> None:
    await port.payment("spn-a", user_id=1, provider="stars")
    async with port.store.transaction() as tx:
        assert await tx.payments.get_of_provider("spn-a", "stars", 1) is not None
        assert await tx.payments.get_of_provider("spn-a", "stars", 2) is None
        assert await tx.payments.get_of_provider("spn-a", "oneplat", 1) is None
        assert await tx.payments.get("spn-a", user_id=2) is None
        found = await tx.payments.candidates("stars", ["g-spn-a"], [])
        assert [p.public_id for p in found] == ["spn-a"]
        assert await tx.payments.candidates("oneplat", ["g-spn-a"], ["spn-a"]) == []


async def test_grant_targets_and_expiries(port: Port) -> None:
    async with port.store.transaction() as tx:
        await tx.accounts.set_expiries({1: NOW})
        targets = await tx.accounts.lock_for_grant([2, 1, 3])
    assert sorted(targets) == [1, 2]
    assert targets[1].expires_at == NOW and targets[2].expires_at is None


async def test_a_grant_writes_expiry_and_plan_and_reads_them_back(port: Port) -> None:
    pro = AssignedPlan(
        "pro", PlanLimits(3, 200, "MONTH", ("0b5f3c3e-9c1a-4c1e-9a8e-3f1f6b2f7a10",))
    )
    later = NOW + timedelta(days=30)
    async with port.store.transaction() as tx:
        await tx.accounts.set_grants({1: (later, pro), 2: (NOW, None)})
    async with port.store.transaction() as tx:
        targets = await tx.accounts.lock_for_grant([1, 2])
        states = await tx.accounts.sync_states([1, 2])
    assert (targets[1].expires_at, targets[1].plan) == (later, pro)
    assert (targets[2].expires_at, targets[2].plan) == (NOW, None)
    assert (states[1].expires_at, states[1].plan) == (later, pro)
    assert states[2].plan is None
    async with port.store.transaction() as tx:  # a later grant without a plan keeps nothing
        await tx.accounts.set_grants({1: (later, None)})
        assert (await tx.accounts.lock_for_grant([1]))[1].plan is None


async def test_a_payment_carries_the_plan_it_was_started_with(port: Port) -> None:
    await port.payment("spn-a", user_id=1)
    await port.payment("spn-b", user_id=1)
    limits = PlanLimits(device_limit=2)
    async with port.store.transaction() as tx:
        await tx.plans.keep_snapshot("spn-a", limits)
    async with port.store.transaction() as tx:
        found = {
            p.public_id: p for p in await tx.payments.candidates("oneplat", [], ["spn-a", "spn-b"])
        }
    assert found["spn-a"].plan_limits == limits
    assert found["spn-a"].plan == AssignedPlan(found["spn-a"].tariff_code, limits)
    assert found["spn-b"].plan_limits is None and found["spn-b"].plan is None


async def test_a_referral_is_rewarded_once(port: Port) -> None:
    await port.add_referral(2, 1)
    async with port.store.transaction() as tx:
        assert await tx.referrals.reward_once([2, 1], NOW) == [(2, 1)]
        assert await tx.referrals.reward_once([2], NOW) == []


async def test_a_failed_unit_of_work_leaves_nothing(port: Port) -> None:
    with pytest.raises(RuntimeError):
        async with port.store.transaction() as tx:
            await tx.jobs.add("notify", {}, dedup_key="k")
            raise RuntimeError("boom")
    async with port.store.transaction() as tx:
        assert await tx.jobs.add("notify", {}, dedup_key="k")


# Panel webhooks (spnbot/store/panel_events.py) -------------------------------------------------


async def test_a_panel_delivery_is_remembered_once_and_pruned_by_age(port: Port) -> None:
    async with port.store.transaction() as tx:
        assert await tx.panel_events.remember("k" * 64, "user.expired", NOW)
        assert not await tx.panel_events.remember("k" * 64, "user.expired", NOW)
        assert await tx.panel_events.remember("old", "user.enabled", NOW - timedelta(days=8))
        assert await tx.panel_events.seen("k" * 64) and not await tx.panel_events.seen("x")
    async with port.store.transaction() as tx:
        assert await tx.panel_events.prune(NOW - timedelta(days=7)) == 1
        assert not await tx.panel_events.seen("old") and await tx.panel_events.seen("k" * 64)
        assert await tx.panel_events.prune(NOW - timedelta(days=7)) == 0


async def _linked(port: Port) -> None:
    async with port.store.transaction() as tx:
        await tx.accounts.record_sync(
            [
                PanelLink(1, "17", "https://p.example/api/sub/a_b-C"),
                PanelLink(2, "0966ae0c-a67a-443a-a788-39c099ab4e43", "https://p.example/sub/axb-C"),
            ],
            [],
            NOW,
        )
        await tx.accounts.set_expiries({1: NOW})


async def test_the_customer_behind_a_panel_user(port: Port) -> None:
    await _linked(port)
    async with port.store.transaction() as tx:
        by_ref = await tx.panel_events.by_panel_ref(["nope", "17"])
        assert by_ref == Customer(1, "17", NOW)
        assert await tx.panel_events.by_panel_ref([]) is None
        assert (await tx.panel_events.by_telegram_id(2)) == Customer(
            2, "0966ae0c-a67a-443a-a788-39c099ab4e43", None
        )
        assert await tx.panel_events.by_telegram_id(3) is None
        # "_" is a LIKE wildcard: "a_b-C" must not match user 2's "axb-C" link
        assert (await tx.panel_events.by_short_uuid("a_b-C")) == by_ref
        assert (await tx.panel_events.by_short_uuid("axb-C")) is not None
        assert await tx.panel_events.by_short_uuid("b-C") is None  # a whole last segment only


async def test_a_deleted_panel_user_is_unlinked_only_while_linked(port: Port) -> None:
    await _linked(port)
    async with port.store.transaction() as tx:
        assert not await tx.panel_events.forget_panel_user(1, "18")  # linked to 17 now
        await tx.panel_events.keep_link(1, "17", "https://p.example/api/sub/new")
        await tx.panel_events.keep_link(2, "17", "https://p.example/api/sub/wrong")
        assert (await tx.panel_events.by_short_uuid("new")) == Customer(1, "17", NOW)
        assert await tx.panel_events.by_short_uuid("wrong") is None
        assert await tx.panel_events.forget_panel_user(1, "17")
        assert await tx.panel_events.by_panel_ref(["17"]) is None
        assert await tx.panel_events.by_short_uuid("new") is None
        states = await tx.accounts.sync_states([1])
    assert states[1].panel_ref is None and states[1].expires_at == NOW  # what was paid stays


async def test_drift_pages_customers_and_relinks_only_from_the_expected_ref(port: Port) -> None:
    await port.add_user(3)
    async with port.store.transaction() as tx:
        await tx.accounts.set_expiries({1: NOW, 3: NOW})
        assert await tx.drift.relink(3, None, "7", "https://sub/a")
    async with port.store.transaction() as tx:
        first = await tx.drift.customers_after(0, 1)
        rest = await tx.drift.customers_after(first[-1].user_id, 10)
        # User 2 has neither a subscription nor a panel link: not a customer.
        assert [c.user_id for c in first + rest] == [1, 3]
        assert rest[0].panel_ref == "7" and rest[0].subscription_url == "https://sub/a"
        assert rest[0].expires_at == NOW
        assert not await tx.drift.relink(3, "8", None, None)  # someone re-linked meanwhile
        assert await tx.drift.relink(3, "7", None, None)
        assert await tx.drift.customer(2) is not None and await tx.drift.customer(9) is None
    async with port.store.transaction() as tx:
        gone = await tx.drift.customer(3)
    assert gone is not None and gone.panel_ref is None and gone.subscription_url is None


async def test_first_contact_inserts_a_customer_once(port: Port) -> None:
    async with port.store.transaction() as tx:
        assert await tx.customers.add_if_absent(NewCustomer(7, "u", "U", "en"), NOW)
        assert not await tx.customers.add_if_absent(NewCustomer(7, "x", "X", "ru"), NOW)
        customer = await tx.customers.get(7)
        assert await tx.customers.exists(7) and not await tx.customers.exists(8)
        assert await tx.customers.get(8) is None
    assert customer is not None and customer.language == "en"  # the first contact's row stays
    assert customer.referrer_id is None and customer.terms_accepted_at is None


async def test_a_returning_customer_is_reachable_again_and_terms_keep_the_first_time(
    port: Port,
) -> None:
    later = NOW + timedelta(hours=1)
    async with port.store.transaction() as tx:
        await tx.accounts.mark_blocked([1], NOW)
        await tx.customers.accept_terms(1, NOW)
        await tx.customers.accept_terms(1, later)
        blocked = await tx.customers.get(1)
        await tx.customers.refresh_contact(1, username="n", first_name=None)
        back = await tx.customers.get(1)
        languages = await tx.customers.languages([1, 2, 99])
    assert blocked is not None and blocked.blocked_at == NOW
    assert back is not None and back.blocked_at is None and back.terms_accepted_at == NOW
    assert languages == {1: "ru", 2: "ru"}


async def test_referrals_are_counted_per_referrer(port: Port) -> None:
    async with port.store.transaction() as tx:
        await tx.customers.add_if_absent(NewCustomer(3, None, None, "ru"), NOW)
        await tx.customers.set_referrer(2, 1)
        await tx.referrals.add(2, 1, NOW)
        await tx.referrals.add(3, 1, NOW)
        assert await tx.referrals.reward_once([3], NOW) == [(3, 1)]
        assert await tx.referrals.counts(1) == (2, 1)
        assert await tx.referrals.counts(2) == (0, 0)
        referred = await tx.customers.get(2)
    assert referred is not None and referred.referrer_id == 1
    with pytest.raises(Exception):  # IntegrityError, or the fake's ValueError
        async with port.store.transaction() as tx:
            await tx.referrals.add(2, 3, NOW)  # one referrer per referred user


async def test_a_promo_code_is_claimed_once_per_user_and_used_up_to_its_limit(port: Port) -> None:
    await port.add_promo("SPRING", max_uses=2)
    async with port.store.transaction() as tx:
        promo = await tx.promos.get("SPRING")
        assert await tx.promos.get("spring") is None  # stored upper-case, looked up as given
        assert await tx.promos.claim("SPRING", 1, NOW)
        assert not await tx.promos.claim("SPRING", 1, NOW)
        assert await tx.promos.claim("SPRING", 2, NOW)
        assert [await tx.promos.take_use("SPRING", NOW) for _ in range(3)] == [5, 5, None]
        used = await tx.promos.get("SPRING")
    assert promo is not None and (promo.days, promo.max_uses, promo.used_count) == (5, 2, 0)
    assert used is not None and used.used_count == 2


async def test_an_inactive_or_expired_code_is_not_used(port: Port) -> None:
    await port.add_promo("OFF", active=False)
    await port.add_promo("OLD", expires_at=NOW)
    await port.add_promo("SOON", expires_at=NOW + timedelta(seconds=1))
    async with port.store.transaction() as tx:
        assert await tx.promos.take_use("OFF", NOW) is None
        assert await tx.promos.take_use("OLD", NOW) is None  # expiry is exclusive
        assert await tx.promos.take_use("SOON", NOW) == 5
        assert await tx.promos.take_use("NONE", NOW) is None
        off = await tx.promos.get("OFF")
    assert off is not None and not off.active and off.used_count == 0


async def test_a_broadcast_pages_its_audience_and_moves_by_compare_and_set(port: Port) -> None:
    async with port.store.transaction() as tx:
        for uid in (3, 4, 5):
            await tx.customers.add_if_absent(NewCustomer(uid, None, None, "ru"), NOW)
        await tx.accounts.set_expiries({1: NOW + timedelta(days=1), 2: NOW, 3: NOW})
        await tx.accounts.mark_blocked([3], NOW)
        ids = {a: await tx.broadcasts.add(9, a, "hi", NOW) for a in Audience}
        row = {a: await tx.broadcasts.get(bid) for a, bid in ids.items()}
        pages = {
            a: await tx.broadcasts.recipients(r, after=0, limit=10)
            for a, r in row.items()
            if r is not None
        }
        everyone = row[Audience.ALL]
        assert everyone is not None
        first = await tx.broadcasts.recipients(everyone, after=0, limit=2)
        rest = await tx.broadcasts.recipients(everyone, after=2, limit=2)
    assert pages == {Audience.ALL: [1, 2, 4, 5], Audience.ACTIVE: [1], Audience.EXPIRED: [2]}
    assert (first, rest) == ([1, 2], [4, 5])
    bid = ids[Audience.ALL]
    async with port.store.transaction() as tx:
        assert await tx.broadcasts.advance(bid, Step(0, 2, 1, 1, 0)) == Totals(1, 1, 0)
        assert await tx.broadcasts.advance(bid, Step(0, 2, 1, 1, 0)) is None  # moved on
        assert await tx.broadcasts.advance(bid, Step(2, 5, 2, 0, 0)) == Totals(3, 1, 0)
        assert await tx.broadcasts.finish(bid, NOW) == Totals(3, 1, 0)
        assert await tx.broadcasts.finish(bid, NOW) is None  # once
        assert await tx.broadcasts.advance(bid, Step(5, 6, 1, 0, 0)) is None  # done
        done = await tx.broadcasts.get(bid)
        assert await tx.broadcasts.get(bid + 1000) is None
    assert done is not None and (done.status, done.cursor, done.created_by) == ("done", 5, 9)
    assert done.audience is Audience.ALL and done.text == "hi"
