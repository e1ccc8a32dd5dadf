"""The emulator refuses what the real panel refuses, in the panel's own words (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from spnbot.panel.remnawave import RemnawaveClient
from spnbot.sandbox.remnawave import RemnawaveEmulator

TOKEN = "emulator-token"
PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}
AUTH = {**PROXY, "Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Forwarded-Proto": "https"},
        {"X-Forwarded-For": "127.0.0.1"},
        {"X-Forwarded-Proto": "http", "X-Forwarded-For": "127.0.0.1"},
    ],
    ids=["none", "proto-only", "for-only", "proto-http"],
)
async def test_plain_http_without_both_proxy_headers_is_dropped(
    emulator: RemnawaveEmulator, session: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(
            emulator.url + "/api/auth/status", headers={**headers, "Authorization": "x"}
        ) as response:
            await response.read()
    assert emulator.requests[-1].status is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/this-route-does-not-exist"),
        ("PUT", "/api/users"),  # the path exists, the method does not
        ("DELETE", "/api/users"),
        ("GET", "/api/users/1/actions/revoke"),
        ("GET", "/api/users/by-username/a/b?x=1"),
    ],
)
@pytest.mark.parametrize("auth", [True, False], ids=["auth", "no-auth"])
async def test_unknown_routes_answer_nests_404_before_auth(
    emulator: RemnawaveEmulator,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    auth: bool,
) -> None:
    headers = AUTH if auth else PROXY
    async with session.request(method, emulator.url + path, headers=headers) as response:
        assert response.status == 404
        assert await response.json() == {
            "message": f"Cannot {method} {path}",
            "error": "Not Found",
            "statusCode": 404,
        }


async def test_tags_are_not_taken_for_a_user_key(
    client: RemnawaveClient, emulator: RemnawaveEmulator, session: aiohttp.ClientSession
) -> None:
    body = {
        "username": "tagged",
        "expireAt": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "tag": "VIP",
    }
    async with session.post(emulator.url + "/api/users", json=body, headers=AUTH) as response:
        assert response.status == 201
    async with session.get(emulator.url + "/api/users/tags", headers=AUTH) as response:
        assert response.status == 200
        assert await response.json() == {"response": {"tags": ["VIP"]}}


async def test_2x_by_telegram_id(session: aiohttp.ClientSession) -> None:
    async with RemnawaveEmulator(api_token=TOKEN, api_version=2) as emu:
        url = emu.url + "/api/users/by-telegram-id/"
        async with session.get(url + "42", headers=AUTH) as response:
            assert response.status == 200
            assert await response.json() == {"response": []}
        async with session.get(url + "abc", headers=AUTH) as response:
            assert response.status == 500
            body = await response.json()
            assert (body["errorCode"], body["message"]) == ("A026", "Get user by error")
        client = RemnawaveClient(session, base_url=emu.url, token=TOKEN, api_version=2)
        assert await client.find_by_telegram_id(42) is None


async def test_3x_has_no_2x_lookup(session: aiohttp.ClientSession) -> None:
    async with RemnawaveEmulator(api_token=TOKEN, api_version=3) as emu:
        path = "/api/users/by-telegram-id/42"
        async with session.get(emu.url + path, headers=AUTH) as response:
            assert response.status == 404
            assert (await response.json())["message"] == f"Cannot GET {path}"
