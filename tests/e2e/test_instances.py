"""Two instances in webhook mode on one PostgreSQL: every payment activated and told once, and
each periodic pass run by one of them per interval."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from spnbot.app import Application
from spnbot.domain.states import GrantKind
from spnbot.sandbox.balancer import Balancer
from spnbot.sandbox.stack import Sandbox
from spnbot.store.models import PERIODIC_RUNS, Grant
from tests.e2e.conftest import Stack

USERS = 12


async def test_two_webhook_instances_share_the_work(pg_database_url: str, tmp_path: Path) -> None:
    async with Sandbox() as sandbox, Balancer([]) as balancer:
        settings = sandbox.settings(
            database_url=pg_database_url,
            data_dir=tmp_path,
            telegram_webhook_url=f"{balancer.url}/telegram-webhook",
        )
        first = await sandbox.start_app(settings)
        second = await sandbox.start_app(settings)
        balancer.targets += [f"http://127.0.0.1:{first.port}", f"http://127.0.0.1:{second.port}"]
        # Telegram and the payment providers see one public address: the balancer's.
        sandbox.oneplat.callback_url = f"{balancer.url}/1plat-webhook"
        sandbox.cryptopay.webhook_url = f"{balancer.url}/cryptobot-webhook"
        try:
            stack = Stack(sandbox, first, pg_database_url, tmp_path)
            users = [await stack.customer(7600 + i) for i in range(USERS)]  # chats via both
            payments = [await stack.pending_payment(u.id, "oneplat", "card") for u in users]
            signals = [sandbox.oneplat.pay(p.external_id) for p in payments]
            signals += [  # replays land on both instances
                sandbox.oneplat.send_callback(sandbox.oneplat.build_callback(p.external_id, 1))
                for p in payments
                for _ in range(3)
            ]
            results = await asyncio.gather(*signals)
            assert {r.status for r in results} == {200}
            await asyncio.gather(first.reconciler.run_once(), second.reconciler.run_once())
            await asyncio.gather(first.reminders.run_once(), second.reminders.run_once())
            await stack.jobs_settled()
            for p in payments:
                assert (
                    await stack.count(
                        Grant, Grant.kind == GrantKind.PAYMENT, Grant.source == p.public_id
                    )
                    == 1
                )
                assert stack.success_messages(p.user_id) == 1
            assert sandbox.panel.creates == USERS
            assert min(balancer.served.values()) > USERS  # both instances took real traffic
            assert sandbox.telegram.webhook_failures == []
        finally:
            await second.stop()
            await first.stop()


async def test_periodic_passes_run_on_one_instance_per_interval(
    pg_database_url: str, tmp_path: Path
) -> None:
    """Reconciler, reminders and retention: two instances, one pass each per interval."""
    async with Sandbox() as sandbox, Balancer([]) as balancer:
        settings = sandbox.settings(
            database_url=pg_database_url,
            data_dir=tmp_path,
            telegram_webhook_url=f"{balancer.url}/telegram-webhook",
        )
        first = await sandbox.start_app(settings)
        second = await sandbox.start_app(settings)
        try:
            names = {"reconciler", "reminders", "retention"}
            for _ in range(200):  # the first passes run as the apps start (in the database)
                if set(rows := await _periodic_runs(first)) == names:
                    break
                await asyncio.sleep(0.05)
            assert set(rows) == names
            ids = {first.runner.instance_id, second.runner.instance_id}
            assert set(rows.values()) <= ids
            calls: list[str] = []

            async def work() -> None:
                calls.append("ran")

            for app in (first, second):
                for name in names:
                    assert not await app.periodic_pass(name, 3600, work)
            assert calls == []
            assert await _periodic_runs(first) == rows  # nobody started a second pass
            assert await second.periodic_pass("reconciler", 0, work)  # an interval later
            assert calls == ["ran"]
        finally:
            await second.stop()
            await first.stop()


async def _periodic_runs(app: Application) -> dict[str, str]:
    async with app.db.transaction() as session:
        rows = await session.execute(select(PERIODIC_RUNS.c.name, PERIODIC_RUNS.c.started_by))
        return {name: by for name, by in rows}
