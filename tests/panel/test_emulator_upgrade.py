"""The emulator's sandbox-only 2.x -> 3.x upgrade: same users, links and devices, integer ids,
3.x routes on the same port; and the client's list of every user with one telegramId."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from spnbot.panel.base import PanelRejected
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.sandbox.remnawave import RemnawaveEmulator
from tests.panel.conftest import TOKEN

LATER = datetime.now(UTC) + timedelta(days=30)


def client(
    emulator: RemnawaveEmulator, http: aiohttp.ClientSession, line: int | str
) -> RemnawaveClient:
    return RemnawaveClient(http, base_url=emulator.url, token=TOKEN, api_version=line)


async def test_upgrade_keeps_users_links_and_devices_under_integer_ids() -> None:
    async with (
        RemnawaveEmulator(api_token=TOKEN, api_version=2) as emulator,
        aiohttp.ClientSession() as http,
    ):
        old = client(emulator, http, 2)
        made = await old.create_user(username="tg_7", telegram_id=7, expire_at=LATER)
        emulator.add_device(made.ref, "hwid-1")
        port = emulator.url

        await emulator.upgrade_to_3()
        assert emulator.url == port
        new = client(emulator, http, "auto")
        assert await new.detected_version() == 3
        [same] = await new.find_all_by_telegram_id(7)
        assert same.ref.isdigit() and same.ref != made.ref
        assert (same.subscription_url, same.short_uuid) == (made.subscription_url, made.short_uuid)
        assert same.expire_at == made.expire_at
        assert [d.hwid for d in (await new.list_devices(same.ref)).devices] == ["hwid-1"]
        with pytest.raises(PanelRejected, match="integer id"):
            await new.get_user(made.ref)  # the 2.x uuid means nothing to 3.x
        with pytest.raises(ValueError, match=r"only a 2\.x panel"):
            await emulator.upgrade_to_3()


@pytest.mark.parametrize("line", [3, 2])
async def test_every_user_with_one_telegram_id_is_listed(line: int) -> None:
    async with (
        RemnawaveEmulator(api_token=TOKEN, api_version=line) as emulator,
        aiohttp.ClientSession() as http,
    ):
        panel = client(emulator, http, line)
        first = await panel.create_user(username="tg_8", telegram_id=8, expire_at=LATER)
        second = await panel.create_user(username="copy_8", telegram_id=8, expire_at=LATER)
        await panel.create_user(username="tg_9", telegram_id=9, expire_at=LATER)
        found = await panel.find_all_by_telegram_id(8)
        assert sorted(u.ref for u in found) == sorted([first.ref, second.ref])
        assert (await panel.find_by_telegram_id(8)) in found
        assert await panel.find_all_by_telegram_id(10) == []
        assert await panel.api_line() == line
