"""kill -9 while payments are being activated, then a restart: the restarted instance takes the
dead one's activations over at once (its heartbeat stopped), each exactly once.

The app runs as a real `spnbot run` process so that it can be killed for real.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

import aiohttp
from sqlalchemy import select

from spnbot.config import Settings, database_url_to_sqlalchemy
from spnbot.domain.states import GrantKind
from spnbot.sandbox.stack import Sandbox
from spnbot.store.db import Database
from spnbot.store.jobs import DEAD_AFTER
from spnbot.store.models import GRANTS, JOBS, PAYMENTS, USERS
from tests.ops.test_doctor import sandbox_env

CUSTOMERS = 8
LEASE_SECONDS = 120  # the runner's default lease: what a restart waited for before heartbeats


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _spawn(settings: Settings, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "spnbot.cli",
            "run",
            env={**sandbox_env(settings), "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=out,
        )


async def _until(check: object, *, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            tail = (await asyncio.to_thread(log.read_text))[-3000:]
            raise AssertionError(f"{what} after {timeout}s; app log:\n{tail}")
        await asyncio.sleep(0.1)


async def test_kill_9_mid_activation_is_taken_over_after_restart(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    db = Database(database_url_to_sqlalchemy(database_url))
    async with Sandbox() as sandbox, aiohttp.ClientSession() as http:
        port = _free_port()
        settings = sandbox.settings(
            database_url=database_url, data_dir=tmp_path, web_port=port, payment_check_interval=3600
        )
        # Customers with pending 1Plat invoices, made by an in-process app that then stops.
        app = await sandbox.start_app(settings)
        tariff = settings.tariff("1m")
        assert tariff is not None
        guids = []
        for uid in range(9300, 9300 + CUSTOMERS):
            sandbox.telegram.user(uid, first_name=f"U{uid}")  # has talked to the bot
            await app.users.touch(uid, username=None, first_name=None, language_code="ru")
            await app.users.accept_terms(uid)
            result = await app.purchases.start(uid, tariff, "oneplat", "card", "crash test")
            guids.append(sandbox.oneplat.find(result.public_id).guid)
        await app.stop()
        sandbox.oneplat.callback_url = f"http://127.0.0.1:{port}/1plat-webhook"

        async def healthy() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        async def all_paid_and_held() -> bool:
            async with db.transaction() as session:
                paid = (
                    await session.execute(
                        select(PAYMENTS.c.status).where(PAYMENTS.c.status == "paid")
                    )
                ).all()
                held = (
                    await session.execute(
                        select(JOBS.c.id).where(
                            JOBS.c.kind == "panel_sync", JOBS.c.status == "running"
                        )
                    )
                ).all()
            return len(paid) == CUSTOMERS and len(held) == CUSTOMERS

        first = await _spawn(settings, log)
        try:
            await _until(healthy, timeout=60, what="the app did not start", log=log)
            sandbox.panel.set_failure("timeout")  # activations hang inside the panel call
            callbacks = [asyncio.create_task(sandbox.oneplat.pay(g)) for g in guids]
            await _until(all_paid_and_held, timeout=30, what="payments not confirmed", log=log)
        finally:
            first.send_signal(signal.SIGKILL)  # no shutdown: leases and heartbeats stay behind
            await first.wait()
        await asyncio.gather(*callbacks, return_exceptions=True)
        sandbox.panel.set_failure(None)
        assert all(sandbox.panel.find_user(telegram_id=9300 + i) is None for i in range(CUSTOMERS))

        restarted = time.monotonic()
        second = await _spawn(settings, log)
        try:

            async def activated() -> bool:
                async with db.transaction() as session:
                    ours = dict(
                        (await session.execute(select(USERS.c.tg_id, USERS.c.expires_at))).all()
                    )
                for uid, expires_at in ours.items():
                    panel_user = sandbox.panel.find_user(telegram_id=uid)
                    if panel_user is None or expires_at is None:
                        return False
                    if datetime.fromisoformat(panel_user["expireAt"]) != expires_at:
                        return False
                    if not any(
                        "Оплата прошла успешно" in m.text for m in sandbox.telegram.messages(uid)
                    ):
                        return False
                return True

            await _until(activated, timeout=90, what="not every payment was activated", log=log)
            elapsed = time.monotonic() - restarted
            print(
                f"\n{CUSTOMERS} activations of a killed instance done {elapsed:.1f} s after the "
                f"restart (dead after {DEAD_AFTER.total_seconds():.0f} s, SQLite at once; "
                f"lease {LEASE_SECONDS} s)"
            )
            # Taken over because the heartbeat stopped, not because the lease ran out.
            assert elapsed < LEASE_SECONDS / 2, elapsed
            async with db.transaction() as session:
                grants = (
                    (
                        await session.execute(
                            select(GRANTS.c.source).where(GRANTS.c.kind == GrantKind.PAYMENT)
                        )
                    )
                    .scalars()
                    .all()
                )
            assert len(grants) == len(set(grants)) == CUSTOMERS
            for i in range(CUSTOMERS):
                texts = [m.text for m in sandbox.telegram.messages(9300 + i)]
                assert sum("Оплата прошла успешно" in t for t in texts) == 1, texts
            assert sandbox.panel.creates == CUSTOMERS
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
            await db.dispose()
