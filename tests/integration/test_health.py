"""/healthz names what is down without addresses; /metrics answers while the database is down."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from spnbot.config import database_url_to_sqlalchemy
from spnbot.services.confirm import PaymentConfirmer
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.web.metrics import Metrics
from spnbot.web.server import build_web_app

PASSWORD = "hunter2-db-password"
DOWN_URL = f"postgresql://spnuser:{PASSWORD}@127.0.0.1:1/spn_secret_db"


async def _serve(db: Database) -> AsyncIterator[str]:
    app = build_web_app(
        db=db,
        confirmer=PaymentConfirmer(db, referral_bonus_days=7),
        providers=(),
        oneplat_shop_id=None,
        metrics=Metrics(),
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await db.dispose()


@pytest.fixture
async def down() -> AsyncIterator[str]:
    async for base in _serve(Database(database_url_to_sqlalchemy(DOWN_URL))):
        yield base


@pytest.fixture
async def up(tmp_path: Path) -> AsyncIterator[str]:
    db = Database(database_url_to_sqlalchemy(f"sqlite:///{tmp_path / 'spn.sqlite3'}"))
    await migrate.upgrade(db)
    async for base in _serve(db):
        yield base


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


async def test_healthz_says_what_is_down_and_nothing_more(down: str) -> None:
    status, text = await _get(f"{down}/healthz")
    assert status == 503
    assert json.loads(text) == {"status": "fail", "database": "unreachable"}
    for leak in ("127.0.0.1", "spnuser", PASSWORD, "spn_secret_db", "Errno", "refused"):
        assert leak not in text


async def test_metrics_answer_while_the_database_is_down(down: str) -> None:
    for _ in range(2):  # and keep answering
        status, text = await _get(f"{down}/metrics")
        assert status == 200
        assert "spn_database_up 0.0" in text
        assert "spn_payments{" not in text  # unknown, not stale
        assert PASSWORD not in text and "127.0.0.1" not in text


async def test_metrics_and_health_when_the_database_is_up(up: str) -> None:
    assert (await _get(f"{up}/healthz")) == (200, '{"status": "ok", "database": "ok"}')
    status, text = await _get(f"{up}/metrics")
    assert status == 200 and "spn_database_up 1.0" in text
