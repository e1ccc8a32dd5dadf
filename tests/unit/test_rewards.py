"""Promo-code and gift rules with the in-memory store: each refusal on its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from spnbot.domain.states import GrantKind
from spnbot.services.grants import PANEL_SYNC
from spnbot.services.rewards import GiftResult, PromoResult, RewardsService
from tests.fakes.store import FakeStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store() -> FakeStore:
    st = FakeStore(lambda: NOW)
    for uid in range(1, 21):
        st.add_user(uid)
    return st


def rewards(store: FakeStore) -> RewardsService:
    return RewardsService(store, gift_days=3, clock=lambda: NOW)


async def test_a_code_grants_its_days_once_whatever_its_case(store: FakeStore) -> None:
    store.add_promo("SPRING", days=7)
    done = await rewards(store).redeem(1, "  spring ")
    assert done.result is PromoResult.GRANTED and done.days == 7 and done.grant is not None
    assert store.state.users[1].expires_at == NOW + timedelta(days=7)
    [entry] = store.grants_of(GrantKind.PROMO)
    assert entry.source == "SPRING:1"
    assert store.state.promos["SPRING"].used_count == 1
    assert len(store.jobs_of(PANEL_SYNC)) == 1


async def test_the_same_user_cannot_use_a_code_twice(store: FakeStore) -> None:
    store.add_promo("SPRING")
    service = rewards(store)
    assert (await service.redeem(1, "SPRING")).result is PromoResult.GRANTED
    assert (await service.redeem(1, "spring")).result is PromoResult.ALREADY_USED
    assert store.state.promos["SPRING"].used_count == 1
    assert len(store.grants_of(GrantKind.PROMO)) == 1


async def test_a_code_at_its_limit_is_exhausted_and_the_refusal_leaves_nothing(
    store: FakeStore,
) -> None:
    store.add_promo("TWO", max_uses=2)
    service = rewards(store)
    assert [(await service.redeem(uid, "TWO")).result for uid in (1, 2, 3)] == [
        PromoResult.GRANTED,
        PromoResult.GRANTED,
        PromoResult.EXHAUSTED,
    ]
    # The refused user's claim was rolled back with the rest: no redemption, no days.
    assert ("TWO", 3) not in store.state.redemptions
    assert store.state.users[3].expires_at is None
    assert store.state.promos["TWO"].used_count == 2


@pytest.mark.parametrize(
    ("expires_at", "active", "why"),
    [
        (NOW, True, PromoResult.EXPIRED),  # the expiry moment itself is too late
        (NOW - timedelta(days=1), True, PromoResult.EXPIRED),
        (None, False, PromoResult.INACTIVE),
        (NOW - timedelta(days=1), False, PromoResult.INACTIVE),  # inactive is said first
    ],
)
async def test_an_expired_or_inactive_code_is_refused(
    store: FakeStore, expires_at: datetime | None, active: bool, why: PromoResult
) -> None:
    store.add_promo("CODE", expires_at=expires_at, active=active)
    assert (await rewards(store).redeem(1, "CODE")).result is why
    assert store.state.redemptions == set() and store.state.users[1].expires_at is None
    assert store.state.promos["CODE"].used_count == 0


async def test_a_code_expiring_a_moment_later_still_works(store: FakeStore) -> None:
    store.add_promo("CODE", expires_at=NOW + timedelta(seconds=1))
    assert (await rewards(store).redeem(1, "CODE")).result is PromoResult.GRANTED


@pytest.mark.parametrize("raw", ["NOPE", "", "   ", "X" * 33, "BAD\x00"])
async def test_unknown_or_implausible_codes_are_unknown(store: FakeStore, raw: str) -> None:
    store.add_promo("SPRING")
    transactions = store.transactions
    assert (await rewards(store).redeem(1, raw)).result is PromoResult.UNKNOWN
    assert store.state.redemptions == set()
    if raw.strip() != "NOPE":  # never worth a transaction
        assert store.transactions == transactions


async def test_concurrent_redemptions_take_exactly_max_uses(store: FakeStore) -> None:
    store.add_promo("RUSH", max_uses=5)
    service = rewards(store)
    results = await asyncio.gather(*(service.redeem(uid, "RUSH") for uid in range(1, 21)))
    granted = [r for r in results if r.result is PromoResult.GRANTED]
    assert len(granted) == 5
    assert {r.result for r in results} == {PromoResult.GRANTED, PromoResult.EXHAUSTED}
    assert store.state.promos["RUSH"].used_count == 5
    assert len(store.state.redemptions) == 5 and len(store.grants_of(GrantKind.PROMO)) == 5


async def test_concurrent_tries_of_one_user_grant_once(store: FakeStore) -> None:
    store.add_promo("RUSH", max_uses=5)
    service = rewards(store)
    results = await asyncio.gather(*(service.redeem(1, "rush") for _ in range(4)))
    assert sorted(r.result for r in results) == sorted(
        [PromoResult.GRANTED] + [PromoResult.ALREADY_USED] * 3
    )
    assert store.state.promos["RUSH"].used_count == 1


async def test_the_gift_is_granted_once_per_user(store: FakeStore) -> None:
    service = rewards(store)
    assert not await service.gift_claimed(1)
    first, grant = await service.claim_gift(1)
    assert first is GiftResult.GRANTED and grant is not None
    assert grant.new_expiry == NOW + timedelta(days=3)
    assert await service.gift_claimed(1) and not await service.gift_claimed(2)
    again, none = await service.claim_gift(1)
    assert again is GiftResult.ALREADY and none is None
    assert store.state.users[1].expires_at == NOW + timedelta(days=3)
    assert len(store.grants_of(GrantKind.GIFT)) == 1
    assert (await service.claim_gift(2))[0] is GiftResult.GRANTED  # another user's own gift


async def test_referral_stats_count_invited_and_activated(store: FakeStore) -> None:
    store.state.referrals.update({2: (1, None), 3: (1, NOW), 4: (2, NOW)})
    stats = await rewards(store).referral_stats(1)
    assert (stats.invited, stats.activated) == (2, 1)
    none = await rewards(store).referral_stats(5)
    assert (none.invited, none.activated) == (0, 0)
