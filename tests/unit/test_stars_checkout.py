"""Telegram takes the Stars once we approve a pre-checkout: each check on its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from spnbot.domain.money import Money
from spnbot.domain.states import PaymentStatus
from spnbot.services.confirm import Outcome, PaymentConfirmer
from spnbot.services.stars import StarsCheckout
from tests.fakes.store import FakeStore

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def store() -> FakeStore:
    st = FakeStore(lambda: NOW)
    st.add_user(1)
    st.add_user(2)
    st.add_payment(1, public_id="spn-s", provider="stars", amount=Money.stars(50))
    return st


def checkout(store: FakeStore) -> StarsCheckout:
    return StarsCheckout(store, PaymentConfirmer(store, referral_bonus_days=7, clock=lambda: NOW))


async def test_our_pending_invoice_at_its_price_is_approved(store: FakeStore) -> None:
    assert await checkout(store).precheckout_error(1, "spn-s", "XTR", 50) is None


async def test_an_unknown_payload_is_refused(store: FakeStore) -> None:
    assert await checkout(store).precheckout_error(1, "spn-other", "XTR", 50) == "stars_unknown"


async def test_another_customer_cannot_pay_the_invoice(store: FakeStore) -> None:
    assert await checkout(store).precheckout_error(2, "spn-s", "XTR", 50) == "stars_unknown"


async def test_a_non_stars_payment_is_not_payable_in_stars(store: FakeStore) -> None:
    store.add_payment(1, public_id="spn-rub", provider="oneplat", amount=Money.rub(50))
    assert await checkout(store).precheckout_error(1, "spn-rub", "XTR", 50) == "stars_unknown"


@pytest.mark.parametrize(("currency", "total"), [("XTR", 49), ("XTR", 51), ("RUB", 50), ("XTR", 0)])
async def test_another_amount_or_currency_is_refused(
    store: FakeStore, currency: str, total: int
) -> None:
    assert await checkout(store).precheckout_error(1, "spn-s", currency, total) == "stars_amount"


@pytest.mark.parametrize(
    "status", [PaymentStatus.PAID, PaymentStatus.MISMATCH, PaymentStatus.EXPIRED]
)
async def test_an_invoice_no_longer_pending_is_refused(
    store: FakeStore, status: PaymentStatus
) -> None:
    store.add_payment(
        1, public_id="spn-old", provider="stars", amount=Money.stars(50), status=status
    )
    assert await checkout(store).precheckout_error(1, "spn-old", "XTR", 50) == "stars_not_pending"


async def test_the_receipt_confirms_once_and_keeps_the_first_charge_id(store: FakeStore) -> None:
    stars = checkout(store)
    assert await stars.paid(1, "spn-s", "XTR", 50, "charge-1") is Outcome.CONFIRMED
    assert await stars.paid(1, "spn-s", "XTR", 50, "charge-2") is Outcome.DUPLICATE
    assert store.state.charge_ids[store.payment("spn-s").id] == "charge-1"


async def test_a_receipt_for_another_amount_is_held(store: FakeStore) -> None:
    assert await checkout(store).paid(1, "spn-s", "XTR", 5, "c") is Outcome.MISMATCH
    assert store.payment("spn-s").status is PaymentStatus.MISMATCH
