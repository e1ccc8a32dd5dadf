"""The operator upgrades the panel from 2.x to 3.x under a running shop: every customer keeps
one panel user and the same link. And the other way round, a ref the panel line cannot mean is
refused instead of guessed. Real app and emulator, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import update

from spnbot.domain.states import GrantKind
from spnbot.sandbox.stack import ADMIN_ID, Sandbox
from spnbot.services.grants import GrantRequest, grant_days
from spnbot.store.models import USERS
from tests.e2e.conftest import Stack
from tests.e2e.test_drift import grant, rows, spnbot_sync

A, B, C = 701, 702, 703


@pytest.fixture
async def stack2(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The whole app in front of a Remnawave 2.x panel, the setting pinned to 2."""
    async with Sandbox(panel_version=2) as sandbox:
        settings = sandbox.settings(
            database_url=database_url, data_dir=tmp_path, payment_check_interval=3600
        )
        st = Stack(sandbox, await sandbox.start_app(settings), database_url, tmp_path)
        try:
            yield st
        finally:
            await st.app.stop()


async def link_works(url: str, panel_url: str) -> bool:
    """What a VPN app does with the link: fetch the subscription (the emulator serves it)."""
    short = url.rsplit("/", 1)[-1]
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{panel_url}/api/sub/{short}", headers=headers) as answer,
    ):
        return answer.status == 200


@pytest.mark.timeout(120)
async def test_upgrading_the_panel_keeps_every_customer_and_link(stack2: Stack) -> None:
    stack, panel = stack2, stack2.sandbox.panel
    for uid in (A, B, C):
        await grant(stack, uid, 30, f"pay-{uid}")
    before = await rows(stack)
    assert all(len(before[u].panel_ref) == 36 for u in (A, B, C))  # 2.x uuids
    panel.add_device(before[A].panel_ref, "hwid-phone")
    creates = panel.creates

    await panel.upgrade_to_3()
    await stack.restart(remnawave_api_version="auto")
    assert await stack.app.panel.detected_version() == 3

    # A pays again: the panel sync meets the uuid and backfills it on first contact.
    await grant(stack, A, 30, "pay-a-2")
    # B and C: `spnbot sync --apply` backfills them.
    code, out = await spnbot_sync(stack)
    assert code == 1 and f"{B} backfilled" in out and f"{C} backfilled" in out, out
    assert str(A) not in out.replace("customers", "")
    code, out = await spnbot_sync(stack, "--apply")
    assert f"repaired {B} backfilled" in out and f"repaired {C} backfilled" in out, out
    code, out = await spnbot_sync(stack, "--apply")
    assert code == 0, out

    after = await rows(stack)
    assert panel.creates == creates  # nobody got a second panel user
    assert len(panel.users) == 3
    for uid in (A, B, C):
        mine = [u for u in panel.users.values() if u["telegramId"] == uid]
        assert len(mine) == 1
        assert after[uid].panel_ref == str(mine[0]["id"])
        assert after[uid].subscription_url == before[uid].subscription_url
        assert await link_works(after[uid].subscription_url, panel.url)
    assert after[A].expires_at == before[A].expires_at + timedelta(days=30)
    [a_user] = [u for u in panel.users.values() if u["telegramId"] == A]
    assert datetime.fromisoformat(a_user["expireAt"]) == after[A].expires_at
    devices = await stack.app.panel.list_devices(after[A].panel_ref)
    assert [d.hwid for d in devices.devices] == ["hwid-phone"]


@pytest.mark.timeout(120)
async def test_an_integer_ref_on_a_2x_panel_is_refused_not_guessed(stack2: Stack) -> None:
    """A 3.x operator restored a 2.x panel backup: our refs are integer ids it cannot mean."""
    stack, panel = stack2, stack2.sandbox.panel
    await grant(stack, A, 30, "pay-a")
    async with stack.app.db.transaction() as session:
        await session.execute(update(USERS).where(USERS.c.tg_id == A).values(panel_ref="7"))
    before = await rows(stack)
    panel_before = {ref: dict(u) for ref, u in panel.users.items()}

    code, out = await spnbot_sync(stack, "--apply")
    assert code == 1
    assert f"left     {A} foreign_ref: stored panel ref '7' is a 3.x integer id" in out, out
    assert await rows(stack) == before

    # A payment now: the panel sync refuses at once and the admins are told why.
    async with stack.app.store.transaction() as tx:
        await grant_days(
            tx, GrantRequest(A, 30, GrantKind.PAYMENT, "pay-a-2"), now=datetime.now(UTC)
        )
    stack.app.runner.wake()
    counts = await stack.jobs_settled()
    assert counts.get("failed", 0) == 1
    assert panel.creates == 1 and {r: dict(u) for r, u in panel.users.items()} == panel_before
    told = stack.sandbox.telegram
    await told.wait_for_message(ADMIN_ID, predicate=lambda m: "refusing to guess" in m.text)
