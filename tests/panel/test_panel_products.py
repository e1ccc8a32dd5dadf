"""Limits, HWID devices and subscription revoke (issue 14), client and emulator, both lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from spnbot.panel.base import (
    PANEL_DEFAULT,
    PanelDeviceNotFound,
    PanelNotFound,
    PanelRejected,
    PanelUser,
    UserLimits,
)
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.sandbox.remnawave import RemnawaveEmulator
from spnbot.sandbox.remnawave_devices import DeviceLimitReached

GB = 2**30
PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}


def soon(days: int = 30) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


async def new_user(client: RemnawaveClient, limits: UserLimits | None = None) -> PanelUser:
    return await client.create_user(
        username="tg_4242", telegram_id=4242, expire_at=soon(), limits=limits
    )


async def test_create_without_limits_keeps_the_defaults(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    user = await new_user(client)
    assert user.hwid_device_limit is None
    assert user.traffic_limit_bytes == 0
    assert user.traffic_limit_strategy == "NO_RESET"
    assert user.internal_squads == (emulator.squad_uuid,)


async def test_create_with_a_plans_limits(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    premium = emulator.add_squad("Premium")
    limits = UserLimits(
        hwid_device_limit=3,
        traffic_limit_bytes=100 * GB,
        traffic_limit_strategy="WEEK",
        internal_squads=(premium,),
    )
    user = await new_user(client, limits)

    assert (user.hwid_device_limit, user.traffic_limit_bytes) == (3, 100 * GB)
    assert user.traffic_limit_strategy == "WEEK"
    assert user.internal_squads == (premium,)  # the plan's squads replace the default
    stored = emulator.find_user(telegram_id=4242)
    assert stored is not None
    assert stored["hwidDeviceLimit"] == 3
    assert stored["activeInternalSquads"] == [{"uuid": premium, "name": "Premium"}]


async def test_update_limits_and_expiry_together(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    user = await new_user(client, UserLimits(hwid_device_limit=1))
    premium = emulator.add_squad("Premium")
    target = soon(90)
    both = UserLimits(hwid_device_limit=5, traffic_limit_strategy="DAY", internal_squads=(premium,))
    updated = await client.set_expiry(user.ref, target, limits=both)

    assert updated.expire_at == target
    assert updated.hwid_device_limit == 5
    assert updated.traffic_limit_strategy == "DAY"
    assert updated.internal_squads == (premium,)
    assert updated.traffic_limit_bytes == 0  # None in UserLimits leaves a field alone

    unlimited = await client.set_limits(user.ref, UserLimits(traffic_limit_bytes=0))
    assert unlimited.expire_at == target and unlimited.hwid_device_limit == 5


async def test_the_panels_default_device_limit_clears_a_users_own(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    """A trial's limit does not stay: PANEL_DEFAULT is null on update, left out on create."""
    user = await new_user(client, UserLimits(hwid_device_limit=1))
    cleared = await client.set_limits(user.ref, UserLimits(hwid_device_limit=PANEL_DEFAULT))
    assert cleared.hwid_device_limit is None
    stored = emulator.find_user(telegram_id=4242)
    assert stored is not None and stored["hwidDeviceLimit"] is None
    [update] = [r for r in emulator.requests if r.method == "PATCH"]
    assert "hwidDeviceLimit" in update.json and update.json["hwidDeviceLimit"] is None
    fresh = await client.create_user(
        username="dora",
        telegram_id=4343,
        expire_at=soon(5),
        limits=UserLimits(hwid_device_limit=PANEL_DEFAULT, traffic_limit_bytes=0),
    )
    assert fresh.hwid_device_limit is None
    create = [r for r in emulator.requests if r.method == "POST"][-1]
    assert "hwidDeviceLimit" not in create.json  # null is refused on create


async def test_a_null_device_limit_on_create_is_refused_like_the_panel(
    emulator: RemnawaveEmulator, client: RemnawaveClient
) -> None:
    body = {"username": "nully", "expireAt": "2099-01-01T00:00:00.000Z", "hwidDeviceLimit": None}
    with pytest.raises(PanelRejected):
        await client._call("POST", "/api/users", json=body)  # as another client could send it
    assert emulator.find_user(username="nully") is None


async def test_unknown_squad_in_limits_changes_nothing(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    user = await new_user(client)
    ghost = UserLimits(internal_squads=("11111111-1111-4111-8111-111111111111",))
    with pytest.raises(PanelRejected, match="A118"):
        await client.set_limits(user.ref, ghost)
    assert await client.get_user(user.ref) == user


@pytest.mark.parametrize(
    "bad",
    [
        {"hwid_device_limit": -1},
        {"traffic_limit_bytes": 1.5},
        {"traffic_limit_bytes": True},
        {"traffic_limit_strategy": "MONTH_ROLLING"},
        {"internal_squads": ["6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"]},
    ],
)
def test_bad_limits_are_refused_before_any_call(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        UserLimits(**bad)  # type: ignore[arg-type]


async def test_empty_limits_update_is_refused(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    user = await new_user(client)
    before = len(emulator.requests)
    with pytest.raises(ValueError, match="at least one"):
        await client.set_limits(user.ref, UserLimits())
    assert len(emulator.requests) == before


async def test_devices_listed_and_deleted(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    user = await new_user(client, UserLimits(hwid_device_limit=2))
    assert (await client.list_devices(user.ref)).total == 0
    emulator.add_device(user.ref, "hwid-phone", platform="iOS", device_model="iPhone 15")
    emulator.add_device(user.ref, "hwid-tv", platform=None, os_version=None, user_agent=None)
    with pytest.raises(DeviceLimitReached):
        emulator.add_device(user.ref, "hwid-third")

    listed = await client.list_devices(user.ref)
    assert listed.total == 2
    phone, tv = listed.devices
    assert (phone.hwid, phone.platform, phone.device_model) == ("hwid-phone", "iOS", "iPhone 15")
    assert phone.created_at.tzinfo is not None
    assert (tv.platform, tv.os_version, tv.user_agent) == (None, None, None)

    left = await client.delete_device(user.ref, "hwid-phone")
    assert [d.hwid for d in left.devices] == ["hwid-tv"] and left.total == 1
    with pytest.raises(PanelDeviceNotFound, match="A204"):
        await client.delete_device(user.ref, "hwid-phone")  # already gone: nothing changes
    assert (await client.list_devices(user.ref)).total == 1


async def test_devices_of_a_missing_user(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    missing = "999" if emulator.api_version == 3 else "00000000-0000-4000-8000-000000000000"
    with pytest.raises(PanelNotFound):
        await client.list_devices(missing)
    with pytest.raises(PanelNotFound):
        await client.delete_device(missing, "hwid-x")


async def test_devices_go_with_the_user(
    client: RemnawaveClient, emulator: RemnawaveEmulator, session: aiohttp.ClientSession
) -> None:
    user = await new_user(client)
    emulator.add_device(user.ref, "hwid-1")
    headers = {**PROXY, "Authorization": "Bearer emulator-token"}
    async with session.delete(f"{emulator.url}/api/users/{user.ref}", headers=headers) as resp:
        assert resp.status < 300
    assert emulator.devices.of(user.ref) == []


async def test_revoke_gives_a_new_link_and_kills_the_old_one(
    client: RemnawaveClient, emulator: RemnawaveEmulator, session: aiohttp.ClientSession
) -> None:
    user = await new_user(client)
    old = user.short_uuid
    async with session.get(f"{emulator.url}/api/sub/{old}", headers=PROXY) as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"

    revoked = await client.revoke_subscription(user.ref)

    assert revoked.short_uuid and revoked.short_uuid != old
    assert revoked.subscription_url.endswith("/" + revoked.short_uuid)
    assert revoked.subscription_url != user.subscription_url
    assert (revoked.ref, revoked.expire_at) == (user.ref, user.expire_at)
    async with session.get(f"{emulator.url}/api/sub/{old}", headers=PROXY) as resp:
        assert resp.status == 404
        assert await resp.json() == {
            "isFound": False,
            "statusCode": 404,
            "message": "Resource not found",
        }
    async with session.get(f"{emulator.url}/api/sub/{revoked.short_uuid}", headers=PROXY) as resp:
        assert resp.status == 200
    assert await client.get_user(user.ref) == revoked


async def test_revoke_of_a_missing_user(
    client: RemnawaveClient, emulator: RemnawaveEmulator
) -> None:
    missing = "999" if emulator.api_version == 3 else "00000000-0000-4000-8000-000000000000"
    with pytest.raises(PanelNotFound):
        await client.revoke_subscription(missing)
