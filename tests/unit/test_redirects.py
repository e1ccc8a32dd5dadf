"""No outside client follows a redirect: a local server redirects to another local server,
which records whether any request (and the credential it carries) arrived there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiogram.exceptions import TelegramNetworkError
from aiohttp import web
from pydantic import SecretStr

from spnbot.bot.factory import make_bot
from spnbot.config import Settings
from spnbot.panel.base import PanelError
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.payments.base import ProviderError
from spnbot.payments.cryptobot import CryptoBotProvider
from spnbot.payments.oneplat import OnePlatProvider

SECRET = "credential-that-must-stay-home-42"
BOT_TOKEN = "123456:AAredirect-token-value-xyz"


@dataclass
class Elsewhere:
    """Another host: records every request that reaches it."""

    url: str = ""
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)


@dataclass
class Servers:
    elsewhere: Elsewhere
    redirector: str  # answers every request with a redirect to the same path elsewhere
    loop: str  # answers every request with a redirect to itself


async def _serve(app: web.Application, runners: list[web.AppRunner]) -> str:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    runners.append(runner)
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    runners: list[web.AppRunner] = []
    elsewhere = Elsewhere()

    async def record(request: web.Request) -> web.Response:
        elsewhere.seen.append((request.path_qs, dict(request.headers)))
        return web.json_response({"ok": True, "success": True, "result": {}})

    far = web.Application()
    far.router.add_route("*", "/{tail:.*}", record)
    elsewhere.url = await _serve(far, runners)

    async def redirect(request: web.Request) -> web.Response:
        # 307 keeps the method and body: the strongest case for a leak.
        raise web.HTTPTemporaryRedirect(elsewhere.url + request.path_qs)

    near = web.Application()
    near.router.add_route("*", "/{tail:.*}", redirect)
    redirector = await _serve(near, runners)

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.path_qs)

    looping = web.Application()
    looping.router.add_route("*", "/{tail:.*}", loop)
    loop_url = await _serve(looping, runners)
    try:
        yield Servers(elsewhere, redirector, loop_url)
    finally:
        for runner in runners:
            await runner.cleanup()


def _leaked(elsewhere: Elsewhere, secret: str) -> bool:
    return any(secret in path or secret in str(headers) for path, headers in elsewhere.seen)


async def test_oneplat_refuses_redirects(servers: Servers) -> None:
    async with aiohttp.ClientSession() as http:
        client = OnePlatProvider(http, base_url=servers.redirector, shop_id="7", secret=SECRET)
        with pytest.raises(ProviderError) as caught:
            await client.ping()
    assert servers.elsewhere.seen == []
    assert "1Plat" in str(caught.value) and "307" in str(caught.value)
    assert not caught.value.retryable and SECRET not in str(caught.value)


async def test_cryptobot_refuses_redirects(servers: Servers) -> None:
    async with aiohttp.ClientSession() as http:
        client = CryptoBotProvider(http, api_url=servers.redirector + "/api", token=SECRET)
        with pytest.raises(ProviderError) as caught:
            await client.ping()
    assert servers.elsewhere.seen == []
    assert "Crypto Pay getMe" in str(caught.value) and "307" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_panel_refuses_redirects(servers: Servers) -> None:
    async with aiohttp.ClientSession() as http:
        client = RemnawaveClient(http, base_url=servers.redirector, token=SECRET, api_version=3)
        with pytest.raises(PanelError) as caught:
            await client.get_user("42")
        detecting = RemnawaveClient(http, base_url=servers.redirector, token=SECRET)
        with pytest.raises(PanelError) as probe:  # the `auto` line probe follows nothing either
            await detecting.get_user("42")
    assert servers.elsewhere.seen == []
    assert "redirect not followed" in str(caught.value) and SECRET not in str(caught.value)
    assert "307" in str(probe.value) and SECRET not in str(probe.value)


def _bot_settings(api_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, bot_token=SecretStr(BOT_TOKEN), telegram_api_url=api_url
    )


@pytest.mark.parametrize("target", ["redirector", "loop"])
async def test_bot_api_refuses_redirects(servers: Servers, target: str) -> None:
    bot = make_bot(_bot_settings(getattr(servers, target)))
    try:
        with pytest.raises(TelegramNetworkError) as caught:
            await bot.get_me()
        # A second call (a fresh ClientSession after a reset keeps the guard too).
        with pytest.raises(TelegramNetworkError):
            await bot.send_message(1, "hello")
    finally:
        await bot.session.close()
    assert servers.elsewhere.seen == [] and not _leaked(servers.elsewhere, BOT_TOKEN)
    assert "redirect" in str(caught.value) and BOT_TOKEN not in str(caught.value)
