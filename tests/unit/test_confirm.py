"""The one door with an in-memory store: each guard of the payment heart on its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spnbot.domain.money import Money
from spnbot.domain.reports import ProviderStatus, StatusReport
from spnbot.domain.states import GrantKind, PaymentStatus
from spnbot.services.confirm import Outcome, PaymentConfirmer
from spnbot.services.grants import PANEL_SYNC
from spnbot.services.notify import ADMIN_NOTICE, NOTIFY
from spnbot.store.jobs import Lease
from tests.fakes.store import FakePayments, FakeStore, FakeTx

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PRICE = Money.rub(100)


@pytest.fixture
def store() -> FakeStore:
    st = FakeStore(lambda: NOW)
    st.add_user(1)
    st.add_payment(1, public_id="spn-a", external_id="ga")
    return st


def confirmer(store: FakeStore, **kw: Any) -> PaymentConfirmer:
    return PaymentConfirmer(store, referral_bonus_days=7, clock=lambda: NOW, **kw)


def paid(
    external_id: str = "ga", order_id: str | None = "spn-a", amount: Money = PRICE
) -> StatusReport:
    return StatusReport(external_id, order_id, ProviderStatus.PAID, amount, "1")


def report(status: ProviderStatus, external_id: str = "ga") -> StatusReport:
    return StatusReport(external_id, "spn-a", status, PRICE, str(status))


async def test_a_paid_report_confirms_grants_and_queues_the_follow_ups(store: FakeStore) -> None:
    assert await confirmer(store).apply("oneplat", paid(), via="webhook") is Outcome.CONFIRMED
    payment = store.payment("spn-a")
    assert payment.status is PaymentStatus.PAID and payment.paid_via == "webhook"
    assert payment.paid_at == NOW
    assert store.state.users[1].expires_at == NOW + timedelta(days=30)
    [grant] = store.grants_of(GrantKind.PAYMENT)
    assert (grant.source, grant.days, grant.new_expiry) == ("spn-a", 30, NOW + timedelta(days=30))
    assert len(store.jobs_of(PANEL_SYNC)) == 1
    [notice] = store.jobs_of(ADMIN_NOTICE)
    assert notice.payload["template"] == "admin_payment" and notice.run_after > NOW


async def test_a_replay_is_a_duplicate_and_changes_nothing(store: FakeStore) -> None:
    door = confirmer(store)
    await door.apply("oneplat", paid(), via="webhook")
    before = store.state
    outcome = await door.apply("oneplat", paid(), via="reconciler")
    assert outcome is Outcome.DUPLICATE
    assert store.state == before  # not paid_via, not paid_at, no grant, no job


async def test_when_the_compare_and_set_is_lost_nothing_is_granted(store: FakeStore) -> None:
    """Another instance moved the payment between our read and our write."""

    class LosingPayments(FakePayments):
        async def move_to_paid(self, ids: Any, *, via: str, now: datetime) -> set[int]:
            return set()

    class RacedTx(FakeTx):
        def __init__(self, state: Any, clock: Any) -> None:
            super().__init__(state, clock)
            self.payments = LosingPayments(state)

    store.tx_factory = RacedTx
    assert await confirmer(store).apply("oneplat", paid(), via="webhook") is Outcome.DUPLICATE
    assert store.state.grants == [] and store.state.jobs == {}
    assert store.state.users[1].expires_at is None


async def test_signals_for_one_payment_in_one_batch_confirm_it_once(store: FakeStore) -> None:
    door = confirmer(store)
    outcomes = await asyncio.gather(
        *(door.apply("oneplat", paid(), via="webhook") for _ in range(5))
    )
    assert sorted(outcomes) == sorted([Outcome.CONFIRMED] + [Outcome.DUPLICATE] * 4)
    assert len(store.grants_of(GrantKind.PAYMENT)) == 1
    assert store.state.users[1].expires_at == NOW + timedelta(days=30)


async def test_another_amount_holds_the_payment_and_tells_the_admins(store: FakeStore) -> None:
    outcome = await confirmer(store).apply("oneplat", paid(amount=Money.rub(99)), via="webhook")
    assert outcome is Outcome.MISMATCH
    assert store.payment("spn-a").status is PaymentStatus.MISMATCH
    assert store.state.mismatch_reported[store.payment("spn-a").id] == Money.rub(99)
    [notice] = store.jobs_of(ADMIN_NOTICE)
    assert notice.payload["template"] == "admin_mismatch"
    assert store.state.grants == []


async def test_a_held_payment_stays_held_whatever_comes_next(store: FakeStore) -> None:
    door = confirmer(store)
    await door.apply("oneplat", paid(amount=Money.rub(99)), via="webhook")
    held = store.state
    for signal in (paid(), paid(amount=Money.rub(1)), report(ProviderStatus.FAILED)):
        assert await door.apply("oneplat", signal, via="reconciler") in (
            Outcome.MISMATCH,
            Outcome.DUPLICATE,
        )
    assert store.state == held
    assert store.payment("spn-a").status is PaymentStatus.MISMATCH


async def test_a_mismatch_is_reported_to_the_admins_once(store: FakeStore) -> None:
    door = confirmer(store)
    for _ in range(3):
        await door.apply("oneplat", paid(amount=Money.rub(99)), via="webhook")
    assert len(store.jobs_of(ADMIN_NOTICE)) == 1


@pytest.mark.parametrize("given_up", [PaymentStatus.EXPIRED, PaymentStatus.FAILED])
async def test_money_that_arrives_late_still_counts(
    store: FakeStore, given_up: PaymentStatus
) -> None:
    store.add_payment(1, public_id="spn-late", external_id="gl", status=given_up)
    outcome = await confirmer(store).apply("oneplat", paid("gl", "spn-late"), via="reconciler")
    assert outcome is Outcome.CONFIRMED
    assert store.payment("spn-late").status is PaymentStatus.PAID


async def test_unknown_ids_and_other_providers_are_unknown(store: FakeStore) -> None:
    door = confirmer(store)
    assert await door.apply("oneplat", paid("nope", "spn-nope"), via="webhook") is Outcome.UNKNOWN
    assert await door.apply("cryptobot", paid(), via="webhook") is Outcome.UNKNOWN
    # ids that point at different payments: trusted for neither
    store.add_payment(1, public_id="spn-b", external_id="gb")
    assert await door.apply("oneplat", paid("ga", "spn-b"), via="webhook") is Outcome.UNKNOWN
    assert store.state.grants == []


async def test_the_providers_id_is_learnt_on_confirmation() -> None:
    st = FakeStore(lambda: NOW)
    st.add_user(1)
    st.add_payment(1, public_id="spn-x", external_id=None)
    assert (
        await confirmer(st).apply("oneplat", paid("gx", "spn-x"), via="webhook")
        is Outcome.CONFIRMED
    )
    assert st.payment("spn-x").external_id == "gx"


async def test_still_pending_changes_nothing(store: FakeStore) -> None:
    before = store.state
    assert await confirmer(store).apply("oneplat", report(ProviderStatus.PENDING), via="x") is (
        Outcome.NO_CHANGE
    )
    assert store.state == before


async def test_a_failed_invoice_is_closed_and_the_customer_told_once(store: FakeStore) -> None:
    door = confirmer(store)
    assert (
        await door.apply("oneplat", report(ProviderStatus.FAILED), via="webhook") is Outcome.FAILED
    )
    assert store.payment("spn-a").status is PaymentStatus.FAILED
    assert await door.apply("oneplat", report(ProviderStatus.FAILED), via="webhook") is (
        Outcome.DUPLICATE
    )
    [told] = store.jobs_of(NOTIFY)
    assert told.payload["template"] == "payment_failed"
    assert told.payload["buttons"][0][0]["screen"] == "tariffs"


async def test_an_expired_invoice_is_closed_quietly(store: FakeStore) -> None:
    assert await confirmer(store).apply("oneplat", report(ProviderStatus.EXPIRED), via="x") is (
        Outcome.EXPIRED
    )
    assert store.payment("spn-a").status is PaymentStatus.EXPIRED
    assert store.jobs_of(NOTIFY) == []


async def test_a_late_failure_never_undoes_a_payment(store: FakeStore) -> None:
    door = confirmer(store)
    await door.apply("oneplat", paid(), via="webhook")
    assert await door.apply("oneplat", report(ProviderStatus.FAILED), via="x") is Outcome.DUPLICATE
    assert store.payment("spn-a").status is PaymentStatus.PAID


async def test_the_referrer_is_rewarded_once_on_the_first_payment(store: FakeStore) -> None:
    store.add_user(2)
    store.state.users[1].referrer_id = 2
    store.state.referrals[1] = (2, None)
    store.add_payment(1, public_id="spn-second", external_id="g2")
    door = confirmer(store)
    await door.apply("oneplat", paid(), via="webhook")
    await door.apply("oneplat", paid("g2", "spn-second"), via="webhook")
    [bonus] = store.grants_of(GrantKind.REFERRAL)
    assert (bonus.user_id, bonus.source, bonus.days) == (2, "1", 7)
    assert store.state.users[2].expires_at == NOW + timedelta(days=7)
    assert store.state.users[1].expires_at == NOW + timedelta(days=60)


async def test_payments_of_one_user_in_one_batch_stack(store: FakeStore) -> None:
    store.add_payment(1, public_id="spn-b", external_id="gb", days=90)
    door = confirmer(store)
    outcomes = await asyncio.gather(
        door.apply("oneplat", paid(), via="webhook"),
        door.apply("oneplat", paid("gb", "spn-b"), via="webhook"),
    )
    assert outcomes == [Outcome.CONFIRMED, Outcome.CONFIRMED]
    assert store.state.users[1].expires_at == NOW + timedelta(days=120)


async def test_follow_ups_are_handed_to_this_process_when_it_can_run_them(store: FakeStore) -> None:
    adopted: list[Any] = []

    def adopt(jobs: Any) -> list[Any]:
        adopted.extend(jobs)
        return []

    await confirmer(store, adopt=adopt, lease=Lease("me", timedelta(minutes=2))).apply(
        "oneplat", paid(), via="webhook"
    )
    [job] = adopted
    assert job.kind == PANEL_SYNC and job.attempts == 1
    assert store.state.jobs[job.id].status == "running"  # claimed already, leased to us


# -- answered without asking the provider (a delivery that proves nothing alone) ------------


@pytest.mark.parametrize(
    "status", [PaymentStatus.PENDING, PaymentStatus.EXPIRED, PaymentStatus.FAILED]
)
async def test_a_claim_about_a_payment_that_can_change_must_be_asked(
    store: FakeStore, status: PaymentStatus
) -> None:
    store.add_payment(1, public_id="spn-c", external_id="gc", status=status)
    before = store.state
    assert await confirmer(store).answer_unasked("oneplat", paid("gc", "spn-c")) is None
    assert store.state == before


async def test_a_claim_whose_payment_is_not_stored_yet_must_be_asked() -> None:
    """The crash window: the invoice exists at the provider, its id never reached us."""
    st = FakeStore(lambda: NOW)
    st.add_user(1)
    st.add_payment(1, public_id="spn-x", external_id=None)
    assert await confirmer(st).answer_unasked("oneplat", paid("gx", "spn-x")) is None


async def test_a_replayed_claim_is_a_duplicate_unasked_and_changes_nothing(
    store: FakeStore,
) -> None:
    door = confirmer(store)
    await door.apply("oneplat", paid(), via="webhook")
    before = store.state
    assert await door.answer_unasked("oneplat", paid()) is Outcome.DUPLICATE
    assert await door.answer_unasked("oneplat", report(ProviderStatus.FAILED)) is (
        Outcome.DUPLICATE
    )
    assert store.state == before


async def test_a_claim_about_a_held_payment_stays_held_unasked(store: FakeStore) -> None:
    store.add_payment(1, public_id="spn-h", external_id="gh", status=PaymentStatus.MISMATCH)
    before = store.state
    assert await confirmer(store).answer_unasked("oneplat", paid("gh", "spn-h")) is (
        Outcome.MISMATCH
    )
    assert store.state == before


async def test_an_invented_claim_is_unknown_unasked(store: FakeStore) -> None:
    door = confirmer(store)
    assert await door.answer_unasked("oneplat", paid("nope", "spn-nope")) is Outcome.UNKNOWN
    assert await door.answer_unasked("cryptobot", paid()) is Outcome.UNKNOWN
    store.add_payment(1, public_id="spn-b", external_id="gb")
    assert await door.answer_unasked("oneplat", paid("ga", "spn-b")) is Outcome.UNKNOWN
