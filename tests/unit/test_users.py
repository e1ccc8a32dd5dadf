"""First contact with the in-memory store: who becomes whose referral, and who stays as they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spnbot.services.users import UserService
from tests.fakes.store import FakeStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
INVITER = 100


@pytest.fixture
def store() -> FakeStore:
    st = FakeStore(lambda: NOW)
    st.add_user(INVITER)
    return st


async def touch(store: FakeStore, tg_id: int, referrer_id: int | None = None, **kw: str) -> bool:
    profile = await UserService(store, clock=lambda: NOW).touch(
        tg_id,
        username=kw.get("username"),
        first_name=kw.get("first_name"),
        language_code=kw.get("language_code", "ru"),
        referrer_id=referrer_id,
    )
    return profile.created


async def test_first_contact_with_a_referrer_records_the_referral(store: FakeStore) -> None:
    assert await touch(store, 1, INVITER, language_code="en-GB")
    user = store.state.users[1]
    assert user.referrer_id == INVITER and user.language == "en"
    assert store.state.referrals == {1: (INVITER, None)}


async def test_a_second_contact_does_not_change_the_referrer(store: FakeStore) -> None:
    store.add_user(200)
    assert await touch(store, 1, INVITER)
    assert not await touch(store, 1, 200, language_code="en")
    assert store.state.users[1].referrer_id == INVITER
    assert store.state.users[1].language == "ru"  # the language stays the first contact's
    assert store.state.referrals == {1: (INVITER, None)}


async def test_an_existing_customer_gets_no_referrer_later(store: FakeStore) -> None:
    assert await touch(store, 1)
    assert not await touch(store, 1, INVITER)
    assert store.state.users[1].referrer_id is None and store.state.referrals == {}


@pytest.mark.parametrize("referrer", [1, 555, 0, -5, 2**63])  # self, unknown, impossible ids
async def test_no_referral_from_oneself_or_a_stranger(store: FakeStore, referrer: int) -> None:
    assert await touch(store, 1, referrer)
    assert store.state.users[1].referrer_id is None
    assert store.state.referrals == {}


async def test_a_returning_user_is_reachable_again_with_fresh_names(store: FakeStore) -> None:
    store.add_user(1, blocked_at=NOW - timedelta(days=1))
    assert not await touch(store, 1, username="new\x00name", first_name="x" * 200)
    user = store.state.users[1]
    assert user.blocked_at is None and user.username == "newname"
    assert user.first_name == "x" * 128


async def test_terms_keep_the_first_acceptance(store: FakeStore) -> None:
    times = iter([NOW, NOW + timedelta(hours=1)])
    service = UserService(store, clock=lambda: next(times))
    await service.accept_terms(INVITER)
    await service.accept_terms(INVITER)
    assert store.state.users[INVITER].terms_accepted_at == NOW
    profile = await service.get(INVITER)
    assert profile is not None and profile.terms_accepted
    assert await service.get(404) is None
