"""The web server against hostile clients: idle and slow connections are closed after the
configured timeouts, a genuine request still succeeds meanwhile, a client that leaves
mid-body is not an error, and accept errors are logged at a bounded rate."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from spnbot.config import database_url_to_sqlalchemy
from spnbot.payments.cryptobot import CryptoBotProvider
from spnbot.services.confirm import PaymentConfirmer
from spnbot.store import migrate
from spnbot.store.db import Database
from spnbot.web.metrics import Metrics
from spnbot.web.serve import ACCEPT_ERROR_MESSAGE, AcceptErrorLimiter, start_web_server
from spnbot.web.server import build_web_app

KEEPALIVE = 0.6
BODY = 0.6
SLACK = 2.0  # scheduling on a busy 2-core machine


@dataclass
class Served:
    port: int
    runner: web.AppRunner

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    db = Database(database_url_to_sqlalchemy(f"sqlite:///{tmp_path / 'spn.sqlite3'}"))
    await migrate.upgrade(db)
    async with aiohttp.ClientSession() as http:
        app = build_web_app(
            db=db,
            confirmer=PaymentConfirmer(db, referral_bonus_days=7),
            providers=[CryptoBotProvider(http, token="4242:AAserveTOKEN")],
            oneplat_shop_id=None,
            metrics=Metrics(),
        )
        runner, port = await start_web_server(
            app, "127.0.0.1", 0, keepalive_timeout=KEEPALIVE, body_timeout=BODY
        )
        try:
            yield Served(port, runner)
        finally:
            await runner.cleanup()
            await db.dispose()


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes the connection (EOF or reset) within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def test_idle_connections_are_closed_after_the_keepalive_timeout(served: Served) -> None:
    conns = [await served.connect() for _ in range(40)]
    started = time.monotonic()
    results = await asyncio.gather(*(_closed_within(r, KEEPALIVE + SLACK) for r, _ in conns))
    assert all(results)
    assert time.monotonic() - started >= KEEPALIVE * 0.8  # not closed at once either
    for _, writer in conns:
        writer.close()


async def test_an_idle_keepalive_connection_after_a_request_is_closed(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert await _closed_within(reader, KEEPALIVE + SLACK)
    writer.close()


async def test_a_slowloris_head_is_cut_off(served: Served) -> None:
    reader, writer = await served.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed = False
    for i in range(40):  # one header line every 0.1 s: never a complete head
        try:
            writer.write(f"X-Slow-{i}: y\r\n".encode())
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        if await _closed_within(reader, 0.1):
            closed = True
            break
    assert closed and time.monotonic() - started < KEEPALIVE + SLACK
    writer.close()


async def test_a_trickling_body_is_cut_off_and_logged_at_info(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await served.connect()
    writer.write(
        b"POST /cryptobot-webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    await writer.drain()
    assert await _closed_within(reader, BODY + SLACK)
    writer.close()
    await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "request body took over" in caplog.text


async def test_a_client_leaving_mid_body_is_not_an_error(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        _reader, writer = await served.connect()
        writer.write(
            b"POST /cryptobot-webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b"{" * 10
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.3)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, caplog.text


async def test_a_genuine_request_succeeds_among_many_idle_sockets(served: Served) -> None:
    idle = [await served.connect() for _ in range(300)]
    try:
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            async with http.get(f"http://127.0.0.1:{served.port}/healthz") as resp:
                assert resp.status == 200
            assert time.monotonic() - started < 1.0
    finally:
        for _, writer in idle:
            writer.close()


def test_accept_errors_are_logged_at_a_bounded_rate(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    passed_on: list[dict[str, Any]] = []
    logger = logging.getLogger("spn.test.accept")
    limiter = AcceptErrorLimiter(
        passed_on.append, interval=10.0, clock=lambda: now[0], logger=logger
    )
    loop = asyncio.new_event_loop()
    try:
        context = {"message": ACCEPT_ERROR_MESSAGE, "exception": OSError(24, "Too many open files")}
        with caplog.at_level(logging.ERROR, logger="spn.test.accept"):
            for i in range(365_000):  # the attack's 30 s of accept errors
                now[0] = i * 30 / 365_000
                limiter(loop, context)
            limiter(loop, {"message": "something else", "exception": ValueError("x")})
    finally:
        loop.close()
    lines = [r for r in caplog.records if r.name == "spn.test.accept"]
    assert 1 <= len(lines) <= 4
    assert "Too many open files" in lines[0].getMessage()
    assert "more since the last report" in lines[-1].getMessage()
    assert not any(r.exc_info for r in lines)  # one line each, no traceback
    assert [c["message"] for c in passed_on] == ["something else"]  # the rest goes on
