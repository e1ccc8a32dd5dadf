"""Run modes and operations: webhook secret, health, metrics, one SQLite instance, Redis state,
log redaction and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from spnbot.config import ConfigError, database_url_to_sqlalchemy
from spnbot.logs import setup_logging
from spnbot.sandbox import stack as sandbox_stack
from spnbot.sandbox.stack import Sandbox
from spnbot.services.confirm import PaymentConfirmer
from spnbot.store.db import Database
from spnbot.store.models import User
from spnbot.web.metrics import Metrics
from spnbot.web.server import build_web_app
from tests.conftest import IN_CI
from tests.e2e.conftest import Stack

REDIS_URL = os.environ.get("SPN_TEST_REDIS", "redis://127.0.0.1:6379/15")


async def _get(url: str, **headers: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


async def test_webhook_mode_refuses_requests_without_the_secret(stack: Stack) -> None:
    port = _free_port()
    hook = f"http://127.0.0.1:{port}/telegram-webhook"
    await stack.restart(telegram_webhook_url=hook, web_port=port)
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 7700, "type": "private"},
            "from": {"id": 7700, "is_bot": False, "first_name": "X"},
            "text": "/start",
        },
    }
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(hook, json=update, headers=headers) as resp:
                assert resp.status == 401
    async with stack.app.db.transaction() as session:
        assert await session.get(User, 7700) is None  # nothing was processed
    # The emulator (Telegram) knows the secret: a real user gets through.
    await stack.customer(7701)


async def test_health_and_metrics(stack: Stack) -> None:
    base = f"http://127.0.0.1:{stack.app.port}"
    assert (await _get(f"{base}/healthz"))[0] == 200
    payment = await stack.pending_payment(7710, "oneplat", "card")
    await stack.sandbox.oneplat.pay(payment.external_id)
    await stack.jobs_settled()
    status, text = await _get(f"{base}/metrics")
    assert status == 200
    assert 'spn_payments{provider="oneplat",status="paid"} 1.0' in text
    assert 'spn_webhook_responses_total{code="200",provider="oneplat"} 1.0' in text
    assert "spn_activation_seconds_count 1.0" in text
    assert 'spn_jobs{status="done"}' in text


async def test_health_is_503_when_the_database_is_gone() -> None:
    db = Database(database_url_to_sqlalchemy("postgresql://spn@127.0.0.1:1/nothing"))
    app = build_web_app(
        db=db,
        confirmer=PaymentConfirmer(db, referral_bonus_days=7),
        providers=(),
        oneplat_shop_id=None,
        metrics=Metrics(),
    )
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        status, text = await _get(f"http://127.0.0.1:{runner.addresses[0][1]}/healthz")
        assert status == 503 and '"status": "fail"' in text
    finally:
        await runner.cleanup()
        await db.dispose()


async def test_sqlite_refuses_a_second_instance(tmp_path: Path) -> None:
    async with Sandbox() as sandbox:
        settings = sandbox.settings(database_url=None, data_dir=tmp_path)
        first = await sandbox.start_app(settings)
        try:
            with pytest.raises(ConfigError, match="another SPN instance"):
                await sandbox.start_app(settings)
        finally:
            await first.stop()
        second = await sandbox.start_app(settings)  # the lock went with the first
        await second.stop()


@pytest.fixture
async def redis_url() -> str:
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        message = f"Redis at {REDIS_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    finally:
        await client.aclose()
    return REDIS_URL


async def test_conversation_state_survives_a_restart_in_redis(stack: Stack, redis_url: str) -> None:
    await stack.restart(redis_url=redis_url)
    uid = 7720 + uuid.uuid4().int % 1000
    user = await stack.customer(uid)
    from tests.e2e.test_customer import _add_code

    await _add_code(stack, "REDIS", 4, 10)
    await stack.tap(user, "🎟 Ввести промокод", "Отправьте промокод")
    await stack.restart(redis_url=redis_url)  # another process picks up the conversation
    mark = stack.tg.mark(uid)
    await user.send("redis")
    await stack.tg.wait_for_message(uid, contains="Промокод принят", after=mark)


def test_logs_never_show_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    token = "123456:SECRET-token-value-xyz"
    setup_logging("INFO", "json", secrets=[token, "shop-secret-42"])
    try:
        logging.getLogger("spn.test").warning(
            "calling https://api/bot%s/getMe with shop-secret-42", token
        )
        err = capsys.readouterr().err
        assert token not in err and "shop-secret-42" not in err
        assert "bot***/getMe" in err and err.strip().startswith("{")
    finally:
        logging.getLogger().handlers.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    async with Sandbox() as sandbox:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
        env.update(
            BOT_TOKEN=sandbox.bot_token,
            TELEGRAM_API_URL=sandbox.telegram.url,
            REMNAWAVE_BASE_URL=sandbox.panel.url,
            REMNAWAVE_API_TOKEN=sandbox_stack.PANEL_TOKEN,
            DATABASE_URL=f"sqlite:///{tmp_path / 'spn.sqlite3'}",
            WEB_PORT=str(port),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "spnbot.cli",
            "run",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            for _ in range(600):  # importing aiogram alone takes seconds here
                try:
                    if (await _get(f"http://127.0.0.1:{port}/healthz"))[0] == 200:
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("spnbot run did not come up")
            user = sandbox.telegram.user(7730)
            await user.send("/start")
            await sandbox.telegram.wait_for_message(7730, contains="Добро пожаловать", timeout=15)
            proc.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()
            assert b"Traceback" not in err
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
