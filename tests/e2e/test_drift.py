"""The panel changed behind SPN's back: `spnbot sync` (a real subprocess) reports, `--apply`
repairs by the rules, nothing paid is lost. Real app, real emulator, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from spnbot.config import Settings
from spnbot.domain.states import GrantKind
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.sandbox.stack import ADMIN_ID, PANEL_TOKEN
from spnbot.services.grants import GrantRequest, grant_days
from spnbot.store.models import GRANTS, USERS
from tests.e2e.conftest import Stack

VARIABLES = {name.upper() for name in Settings.model_fields}
PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}


async def spnbot_sync(stack: Stack, *args: str) -> tuple[int, str]:
    """`python -m spnbot.cli sync ARGS` against the stack's database and panel. Asynchronous:
    the emulator answering it runs in this very event loop."""
    panel = stack.sandbox.panel
    env = {k: v for k, v in os.environ.items() if k.upper() not in VARIABLES} | {
        "BOT_TOKEN": stack.sandbox.bot_token,
        "DATABASE_URL": stack.database_url,
        "REMNAWAVE_BASE_URL": panel.url,
        "REMNAWAVE_API_TOKEN": PANEL_TOKEN,
        "REMNAWAVE_API_VERSION": str(stack.app.settings.remnawave_api_version),
        "DEFAULT_SQUAD_UUID": panel.squad_uuid,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spnbot.cli",
        "sync",
        *args,
        cwd=stack.data_dir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode()


class Operator:
    """Someone with the panel's admin UI: changes users without SPN knowing."""

    def __init__(self, stack: Stack, http: aiohttp.ClientSession) -> None:
        self.url = stack.sandbox.panel.url
        self.http = http
        self.client = RemnawaveClient(
            http, base_url=self.url, token=PANEL_TOKEN, api_version=stack.sandbox.panel.api_version
        )

    async def delete(self, ref: str) -> None:
        headers = {"Authorization": f"Bearer {PANEL_TOKEN}", **PROXY}
        async with self.http.delete(f"{self.url}/api/users/{ref}", headers=headers) as answer:
            assert answer.status in (200, 204), await answer.text()


async def grant(stack: Stack, user_id: int, days: int, source: str) -> None:
    """A paid grant through the real path (ledger, expiry, panel-sync job), then settled."""
    await stack.app.users.touch(user_id, username=None, first_name=None, language_code="ru")
    async with stack.app.store.transaction() as tx:
        request = GrantRequest(user_id, days, GrantKind.PAYMENT, source)
        assert await grant_days(tx, request, now=datetime.now(UTC))
    stack.app.runner.wake()
    await stack.jobs_settled()


async def rows(stack: Stack) -> dict[int, Any]:
    async with stack.app.db.transaction() as session:
        found = await session.execute(
            select(USERS.c.tg_id, USERS.c.expires_at, USERS.c.panel_ref, USERS.c.subscription_url)
        )
        return {row.tg_id: row for row in found}


async def ledger(stack: Stack) -> list[tuple[int, str, str]]:
    async with stack.app.db.transaction() as session:
        found = await session.execute(
            select(GRANTS.c.user_id, GRANTS.c.kind, GRANTS.c.source).order_by(GRANTS.c.id)
        )
        return [tuple(row) for row in found]  # type: ignore[misc]


LATER, EARLIER, GONE, TWIN, TAKEN, FINE = 501, 502, 503, 504, 505, 506


@pytest.mark.timeout(120)
async def test_sync_reports_then_apply_repairs_by_the_rules(stack: Stack) -> None:
    for uid in (LATER, EARLIER, GONE, TWIN, TAKEN, FINE):
        await grant(stack, uid, 30, f"pay-{uid}")
    before = await rows(stack)
    paid = await ledger(stack)
    emulator = stack.sandbox.panel
    now = datetime.now(UTC)
    async with aiohttp.ClientSession() as http:
        op = Operator(stack, http)
        extended = before[LATER].expires_at + timedelta(days=10)
        await op.client.set_expiry(before[LATER].panel_ref, extended)
        await op.client.set_expiry(before[EARLIER].panel_ref, now + timedelta(days=1))
        await op.delete(before[GONE].panel_ref)
        twin = await op.client.create_user(
            username=f"twin_{TWIN}", telegram_id=TWIN, expire_at=now + timedelta(days=5)
        )
        await op.delete(before[TAKEN].panel_ref)
        squatter = await op.client.create_user(
            username=f"tg_{TAKEN}", telegram_id=999_999, expire_at=now + timedelta(days=2)
        )

    code, out = await spnbot_sync(stack)
    assert code == 1, out
    assert f"found    {LATER} adopted:" in out
    assert f"found    {EARLIER} pushed:" in out
    assert f"found    {GONE} missing:" in out
    assert f"found    {TWIN} duplicate:" in out and twin.ref in out
    assert f"found    {TAKEN} username_taken: username tg_{TAKEN} belongs to" in out
    assert str(FINE) not in out
    assert "nothing was changed" in out
    assert await rows(stack) == before and await ledger(stack) == paid

    code, out = await spnbot_sync(stack, "--apply")
    assert code == 1, out  # the duplicate and the taken username stay for an admin
    stack.app.runner.wake()
    await stack.jobs_settled()
    after = await rows(stack)
    # Later on the panel: adopted, and written to the ledger as its own kind, once.
    assert after[LATER].expires_at == extended
    panel_rows = [r for r in await ledger(stack) if r[1] == GrantKind.PANEL]
    assert [r[0] for r in panel_rows] == [LATER]
    # Earlier on the panel: ours pushed back, ours unchanged.
    assert after[EARLIER].expires_at == before[EARLIER].expires_at
    pushed = emulator.find_user(telegram_id=EARLIER)
    assert pushed is not None
    assert datetime.fromisoformat(pushed["expireAt"]) == before[EARLIER].expires_at
    # Gone: unlinked; taken: unlinked too, the squatter untouched.
    assert after[GONE].panel_ref is None and after[TAKEN].panel_ref is None
    squatter_now = emulator.find_user(username=f"tg_{TAKEN}")
    assert squatter_now is not None and squatter_now["telegramId"] == 999_999
    assert squatter_now["expireAt"] == emulator.users[squatter.ref]["expireAt"]
    # Duplicate: reported, both users still there, our link unchanged.
    assert after[TWIN].panel_ref == before[TWIN].panel_ref and twin.ref in emulator.users
    # Nothing paid was lost: every payment row is still in the ledger, no expiry went down.
    assert (await ledger(stack))[: len(paid)] == paid
    assert all(after[u].expires_at >= before[u].expires_at for u in before)

    # Second pass: only what an admin must settle is left; nothing is adopted twice.
    code, out = await spnbot_sync(stack, "--apply")
    assert code == 1
    assert "adopted" not in out and "pushed" not in out and "missing" not in out
    assert f"{TWIN} duplicate" in out and f"{TAKEN} username_taken" in out
    assert len([r for r in await ledger(stack) if r[1] == GrantKind.PANEL]) == 1

    # The next grant recreates the vanished panel user: one user, with our expiry.
    await grant(stack, GONE, 7, "pay-gone-2")
    recreated = [u for u in emulator.users.values() if u["telegramId"] == GONE]
    assert len(recreated) == 1
    final = (await rows(stack))[GONE]
    assert final.panel_ref == str(recreated[0]["id"])
    assert final.expires_at == before[GONE].expires_at + timedelta(days=7)


async def test_sync_without_differences_exits_zero(stack: Stack) -> None:
    await grant(stack, FINE, 30, "pay-fine")
    code, out = await spnbot_sync(stack, "--apply")
    assert code == 0, out
    assert "checked 1 customers: 0 differences, 0 repaired" in out


@pytest.mark.timeout(60)
async def test_start_up_logs_a_pinned_version_the_panel_does_not_speak(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="spnbot.app")
    await stack.restart(remnawave_api_version=2)  # the emulator speaks 3.x
    for _ in range(200):
        if any("API line mismatch" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    [line] = [r for r in caplog.records if "API line mismatch" in r.getMessage()]
    assert line.levelname == "ERROR"
    assert "REMNAWAVE_API_VERSION=2 but the panel speaks API 3.x" in line.getMessage()


@pytest.mark.timeout(60)
async def test_start_up_goes_on_when_the_panel_is_unreachable(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="spnbot.app")
    stack.sandbox.panel.set_failure("503")
    await stack.restart(remnawave_api_version=3)
    for _ in range(200):
        if any("unreachable at start-up" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    [line] = [r for r in caplog.records if "unreachable at start-up" in r.getMessage()]
    assert line.levelname == "WARNING"
    assert stack.app.port is not None  # the app is up and serving
    stack.sandbox.panel.set_failure(None)


@pytest.mark.timeout(60)
async def test_the_running_app_checks_periodically_and_sends_one_digest(stack: Stack) -> None:
    await grant(stack, LATER, 30, "pay-later")
    await stack.restart(panel_sync_interval=0.3)
    ours = (await rows(stack))[LATER]
    extended = ours.expires_at + timedelta(days=4)
    async with aiohttp.ClientSession() as http:
        await Operator(stack, http).client.set_expiry(ours.panel_ref, extended)
    digest = await stack.tg.wait_for_message(
        ADMIN_ID, predicate=lambda m: "Сверка с панелью" in m.text, timeout=20
    )
    assert f"{LATER}" in digest.text and "принят" in digest.text
    assert (await rows(stack))[LATER].expires_at == extended
    await asyncio.sleep(1.0)  # a few more passes: nothing new to say, no second digest
    digests = [m for m in stack.tg.messages(ADMIN_ID) if "Сверка с панелью" in m.text]
    assert len(digests) == 1
