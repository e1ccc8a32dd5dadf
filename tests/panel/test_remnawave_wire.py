"""Error mapping, timestamps and response checks of the Remnawave client, without the emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web

from spnbot.panel.base import (
    PanelAuthError,
    PanelConflict,
    PanelError,
    PanelNotFound,
    PanelRejected,
    PanelUnavailable,
)
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.panel.remnawave_wire import error_for, format_expire_at, parse_expire_at


def panel_error(code: str, message: str) -> str:
    return json.dumps(
        {
            "timestamp": "2026-01-01T00:00:00.000Z",
            "path": "/x",
            "message": message,
            "errorCode": code,
        }
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, panel_error("A001", "Server error"), PanelUnavailable),
        (502, "<html>Bad Gateway</html>", PanelUnavailable),
        (401, json.dumps({"statusCode": 401, "message": "Unauthorized"}), PanelAuthError),
        (403, "Forbidden", PanelAuthError),
        (404, panel_error("A025", "User not found"), PanelNotFound),
        (404, panel_error("A062", "Users not found"), PanelNotFound),
        (404, panel_error("A063", "User with specified params not found"), PanelNotFound),
        (404, json.dumps({"statusCode": 404, "message": "Not Found"}), PanelNotFound),
        (404, panel_error("E000", "Cannot GET /api/users/by-telegram-id/1"), PanelRejected),
        (404, "<html>nginx</html>", PanelRejected),
        (404, panel_error("A118", "Internal squad not found"), PanelRejected),
        (400, panel_error("A019", "User username already exists"), PanelConflict),
        (400, json.dumps({"statusCode": 400, "message": "Username already exists"}), PanelConflict),
        (
            400,
            json.dumps({"statusCode": 400, "message": "Validation failed", "errors": []}),
            PanelRejected,
        ),
        (400, panel_error("A030", "User already enabled"), PanelRejected),
        (302, "", PanelRejected),
    ],
)
def test_error_mapping(status: int, body: str, expected: type[PanelError]) -> None:
    error = error_for(status, body, "GET /api/users/1")

    assert type(error) is expected
    assert f"HTTP {status}" in str(error)


def test_validation_issues_reach_the_message() -> None:
    body = {
        "statusCode": 400,
        "message": "Validation failed",
        "errors": [{"code": "custom", "path": ["expireAt"], "message": "cannot be in the past"}],
    }

    error = error_for(400, json.dumps(body), "PATCH /api/users")

    assert "Validation failed: expireAt: cannot be in the past" in str(error)


def test_expire_at_wire_format() -> None:
    moscow = timezone(timedelta(hours=3))
    when = datetime(2026, 5, 1, 3, 4, 5, 678901, tzinfo=moscow)

    assert format_expire_at(when) == "2026-05-01T00:04:05.678Z"
    assert parse_expire_at("2026-05-01T00:04:05.678Z") == datetime(
        2026, 5, 1, 0, 4, 5, 678000, tzinfo=UTC
    )
    assert parse_expire_at("2026-05-01T03:04:05+03:00").utcoffset() == timedelta(0)


@pytest.fixture
async def odd_panel() -> AsyncIterator[tuple[str, dict[str, object]]]:
    """A server answering whatever the test puts in `reply`: body text and status."""
    reply: dict[str, object] = {"status": 200, "text": ""}

    async def handle(request: web.Request) -> web.Response:
        reply["headers"] = dict(request.headers)
        return web.Response(status=int(str(reply["status"])), text=str(reply["text"]))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", reply
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "text",
    [
        "<html>not json</html>",
        json.dumps({"users": []}),  # no envelope
        json.dumps({"response": {"username": "x", "status": "ACTIVE"}}),  # no id, no expireAt
        json.dumps(
            {"response": {"id": 1, "username": "x", "status": "ACTIVE", "expireAt": "soon"}}
        ),
    ],
)
async def test_unexpected_success_bodies_are_rejected(
    odd_panel: tuple[str, dict[str, object]], text: str
) -> None:
    url, reply = odd_panel
    reply["text"] = text
    async with aiohttp.ClientSession() as session:
        client = RemnawaveClient(session, base_url=url, token="t", api_version=3)
        with pytest.raises(PanelRejected, match="unexpected panel response"):
            await client.get_user("1")


async def test_headers_sent(odd_panel: tuple[str, dict[str, object]]) -> None:
    url, reply = odd_panel
    reply["text"] = json.dumps({"response": {"total": 0, "internalSquads": []}})
    async with aiohttp.ClientSession() as session:
        await RemnawaveClient(session, base_url=url, token="t0k", api_key="k3y").ping()
        # An https panel is reached directly: no forwarded headers to spoof there.
        tls = RemnawaveClient(session, base_url="https://panel.example", token="t0k")
    sent = reply["headers"]
    assert isinstance(sent, dict)
    assert sent["Authorization"] == "Bearer t0k"
    assert sent["X-Api-Key"] == "k3y"
    assert sent["X-Forwarded-Proto"] == "https"
    assert sent["X-Forwarded-For"] == "127.0.0.1"
    assert "X-Forwarded-Proto" not in tls._headers
