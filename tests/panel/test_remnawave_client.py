"""RemnawaveClient against the emulator over real HTTP, for panel 3.x and 2.x."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from spnbot.panel.base import (
    PanelAuthError,
    PanelConflict,
    PanelNotFound,
    PanelRejected,
    PanelUnavailable,
)
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.sandbox.remnawave import RemnawaveEmulator

MakeClient = Callable[..., RemnawaveClient]


def days_from_now(days: float) -> datetime:
    # Whole milliseconds: the wire format carries no more, so round trips compare equal.
    now = datetime.now(UTC).replace(microsecond=123000)
    return now + timedelta(days=days)


async def test_create_returns_the_panel_user(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    expire = days_from_now(30)
    user = await client.create_user(username="tg_1001", telegram_id=1001, expire_at=expire)

    assert user.username == "tg_1001"
    assert user.telegram_id == 1001
    assert user.expire_at == expire
    assert user.expire_at.tzinfo is not None
    assert user.status == "ACTIVE"
    assert user.short_uuid and user.subscription_url.endswith("/" + user.short_uuid)
    stored = emulator.find_user(telegram_id=1001)
    assert stored is not None
    assert stored["activeInternalSquads"] == [
        {"uuid": emulator.squad_uuid, "name": "Default-Squad"}
    ]
    if emulator.api_version == 3:
        assert user.ref == str(stored["id"])
    else:
        assert user.ref == stored["uuid"]
    assert emulator.creates == 1
    assert [tid for tid, _, _ in emulator.expiry_updates] == [1001]


async def test_find_by_telegram_id_matches_exactly(client: RemnawaveClient) -> None:
    long_id = await client.create_user(
        username="tg_12345", telegram_id=12345, expire_at=days_from_now(3)
    )
    short_id = await client.create_user(
        username="tg_123", telegram_id=123, expire_at=days_from_now(3)
    )

    found_long = await client.find_by_telegram_id(12345)
    found_short = await client.find_by_telegram_id(123)
    assert found_long is not None and found_long.ref == long_id.ref
    assert found_short is not None and found_short.ref == short_id.ref
    # Substrings of an existing id must not match anyone.
    assert await client.find_by_telegram_id(1234) is None
    assert await client.find_by_telegram_id(2345) is None


async def test_find_by_username_and_get_user(client: RemnawaveClient) -> None:
    created = await client.create_user(username="alice", telegram_id=7, expire_at=days_from_now(1))

    by_name = await client.find_by_username("alice")
    by_ref = await client.get_user(created.ref)
    assert by_name == created
    assert by_ref == created
    assert await client.find_by_username("nobody") is None


async def test_unknown_user(client: RemnawaveClient, emulator: RemnawaveEmulator) -> None:
    unknown = "999" if emulator.api_version == 3 else "00000000-0000-4000-8000-000000000000"

    assert await client.get_user(unknown) is None
    assert await client.find_by_telegram_id(42) is None
    with pytest.raises(PanelNotFound):
        await client.set_expiry(unknown, days_from_now(5))


async def test_set_expiry_is_absolute(client: RemnawaveClient, emulator: RemnawaveEmulator) -> None:
    user = await client.create_user(username="bob", telegram_id=55, expire_at=days_from_now(1))
    target = days_from_now(40)

    first = await client.set_expiry(user.ref, target)
    second = await client.set_expiry(user.ref, target)  # a retried job

    assert first == second
    assert second.expire_at == target
    assert second.status == "ACTIVE"
    assert [when for _, when, _ in emulator.expiry_updates][-2:] == [target, target]


async def test_set_expiry_revives_an_expired_user(client: RemnawaveClient) -> None:
    user = await client.create_user(username="late", telegram_id=77, expire_at=days_from_now(-2))
    assert user.status == "EXPIRED"

    revived = await client.set_expiry(user.ref, days_from_now(30))

    assert revived.status == "ACTIVE"


async def test_expiry_in_the_past_is_rejected(client: RemnawaveClient) -> None:
    user = await client.create_user(username="carol", telegram_id=9, expire_at=days_from_now(1))

    with pytest.raises(PanelRejected, match="Expiration date cannot be in the past"):
        await client.set_expiry(user.ref, days_from_now(-1))


async def test_username_conflict(client: RemnawaveClient, emulator: RemnawaveEmulator) -> None:
    await client.create_user(username="dave", telegram_id=1, expire_at=days_from_now(1))

    with pytest.raises(PanelConflict, match="A019"):
        await client.create_user(username="dave", telegram_id=2, expire_at=days_from_now(1))
    assert emulator.creates == 1


async def test_invalid_username_is_rejected(client: RemnawaveClient) -> None:
    with pytest.raises(PanelRejected, match="username"):
        await client.create_user(username="no spaces!", telegram_id=3, expire_at=days_from_now(1))


async def test_naive_datetime_is_refused(client: RemnawaveClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.create_user(username="naive", telegram_id=4, expire_at=datetime(2030, 1, 1))


async def test_wrong_token(make_client: MakeClient) -> None:
    client = make_client(token="not-the-token")

    with pytest.raises(PanelAuthError, match="401"):
        await client.find_by_username("anyone")
    with pytest.raises(PanelAuthError):
        await client.ping()


async def test_squads_and_ping(client: RemnawaveClient, emulator: RemnawaveEmulator) -> None:
    await client.ping()
    assert await client.squad_exists(emulator.squad_uuid)
    assert not await client.squad_exists("11111111-1111-4111-8111-111111111111")


async def test_unknown_squad_is_rejected(make_client: MakeClient) -> None:
    client = make_client(squad_uuid="11111111-1111-4111-8111-111111111111")

    with pytest.raises(PanelRejected, match="A118"):
        await client.create_user(username="erin", telegram_id=5, expire_at=days_from_now(1))


@pytest.mark.parametrize("mode", ["503", "reset"])
async def test_faults_are_unavailable(
    client: RemnawaveClient, emulator: RemnawaveEmulator, mode: str
) -> None:
    emulator.set_failure(mode)

    with pytest.raises(PanelUnavailable):
        await client.get_user("1" if emulator.api_version == 3 else emulator.squad_uuid)
    with pytest.raises(PanelUnavailable):
        await client.create_user(username="frank", telegram_id=6, expire_at=days_from_now(1))
    assert emulator.creates == 0
    assert emulator.failure_count >= 2

    emulator.set_failure(None)
    user = await client.create_user(username="frank", telegram_id=6, expire_at=days_from_now(1))
    assert user.username == "frank"


async def test_timeout_is_unavailable(make_client: MakeClient, emulator: RemnawaveEmulator) -> None:
    client = make_client(timeout=0.3)
    emulator.set_failure("timeout")

    started = time.monotonic()
    with pytest.raises(PanelUnavailable, match="timed out"):
        await client.find_by_username("gina")
    assert time.monotonic() - started < 2.0


async def test_plain_http_needs_proxy_headers(
    client: RemnawaveClient,
    emulator: RemnawaveEmulator,
    session: aiohttp.ClientSession,
    token: str,
) -> None:
    await client.ping()  # the client sends X-Forwarded-Proto / X-Forwarded-For itself

    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(
            emulator.url + "/api/internal-squads", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            await response.read()
    assert emulator.requests[-1].status is None  # dropped, not answered


async def test_api_key(session: aiohttp.ClientSession, api_version: int, token: str) -> None:
    async with RemnawaveEmulator(api_token=token, api_version=api_version, api_key="k3y") as emu:
        options = {"base_url": emu.url, "token": token, "api_version": api_version}
        with pytest.raises(PanelAuthError, match="403"):
            await RemnawaveClient(session, **options).ping()  # type: ignore[arg-type]
        await RemnawaveClient(session, **options, api_key="k3y").ping()  # type: ignore[arg-type]


async def test_ref_of_the_other_panel_line(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    foreign = emulator.squad_uuid if emulator.api_version == 3 else "17"

    with pytest.raises(PanelRejected, match="addresses users by"):
        await client.get_user(foreign)
    assert emulator.requests == []  # refused before any request


async def test_wrong_api_version_is_not_mistaken_for_no_user(
    make_client: MakeClient, emulator: RemnawaveEmulator
) -> None:
    other = 2 if emulator.api_version == 3 else 3
    client = make_client(api_version=other)

    # 2.x client on 3.x: no by-telegram-id route; 3.x client on 2.x: "stream" is not a uuid.
    with pytest.raises(PanelRejected):
        await client.find_by_telegram_id(1001)
