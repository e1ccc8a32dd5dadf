"""`spnbot run` that cannot start says so in one line, and the bot token never shows."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from spnbot.cli import one_line
from spnbot.logs import Redactor
from tests.cli.test_cli import VARIABLES

TOKEN = "987654:AAstartup-secret-token-value"
PANEL_TOKEN = "panel-secret-token-value"


@pytest.fixture
async def redirect_loop() -> AsyncIterator[str]:
    """A "Bot API" that answers every call with a redirect to itself."""

    async def again(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.path_qs)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", again)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


async def _run(cwd: Path, api_url: str, log_level: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in VARIABLES}
    env = clean | {
        "PATH": os.environ.get("PATH", ""),
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api_url,
        "REMNAWAVE_BASE_URL": "http://127.0.0.1:9",
        "REMNAWAVE_API_TOKEN": PANEL_TOKEN,
        "DATABASE_URL": f"sqlite:///{cwd / 'spn.sqlite3'}",
        "WEB_PORT": "0",
        "LOG_LEVEL": log_level,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spnbot.cli",
        "run",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("bot_api", "log_level"),
    [("redirect-loop", "WARNING"), ("unreachable", "WARNING"), ("redirect-loop", "DEBUG")],
)
async def test_start_up_failure_is_one_masked_line(
    tmp_path: Path, redirect_loop: str, bot_api: str, log_level: str
) -> None:
    api_url = redirect_loop if bot_api == "redirect-loop" else f"http://127.0.0.1:{_closed_port()}"
    code, out, err = await _run(tmp_path, api_url, log_level)
    assert code == 1, err
    everything = out + err
    assert TOKEN not in everything and TOKEN.split(":")[1] not in everything
    assert PANEL_TOKEN not in everything
    assert "Traceback" not in everything
    failures = [line for line in err.splitlines() if "start-up failed" in line]
    assert len(failures) == 1 and failures[0].startswith("start-up failed: "), err
    expected = "redirect" if bot_api == "redirect-loop" else "Cannot connect"
    assert expected in failures[0]
    if log_level == "WARNING":  # nothing else to say at this level: the line stands alone
        assert err.count("\n") == 1, err


def test_one_line_keeps_the_first_line_only() -> None:
    exc = RuntimeError("first line\nsecond line with https://x/bot123456:AAsecretsecret/getMe")
    assert one_line(exc) == "RuntimeError: first line"
    assert one_line(TimeoutError()) == "TimeoutError"
    assert len(one_line(ValueError("x" * 1000))) == 300


def test_redactor_masks_tokens_it_was_not_told_about_and_quoted_spellings() -> None:
    redact = Redactor(["s3cret-Ключ-value"]).redact
    assert redact("https://api.telegram.org/bot123456:AAtoken_value-xyz/getMe") == (
        "https://api.telegram.org/bot***/getMe"
    )
    assert redact("GET /bot123456%3AAAtoken_value-xyz/getMe") == "GET /bot***/getMe"
    assert "Ключ" not in redact("url?key=s3cret-%D0%9A%D0%BB%D1%8E%D1%87-value")
