"""Fixtures for the payment providers: emulators on free ports, clients, a webhook receiver."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Protocol

import aiohttp
import pytest
from aiohttp import web

from spnbot.payments.base import WebhookRejected, WebhookResult
from spnbot.payments.cryptobot import CryptoBotProvider
from spnbot.payments.oneplat import OnePlatProvider
from spnbot.payments.yookassa import YooKassaProvider
from spnbot.sandbox.cryptopay import CryptoPayEmulator
from spnbot.sandbox.oneplat import OnePlatEmulator
from spnbot.sandbox.yookassa import YooKassaEmulator

SHOP_ID = "shop-17"
SECRET = "s3cret-Ключ"
TOKEN = "4242:AAtestTOKEN"


class WebhookVerifier(Protocol):
    """A provider that reads a webhook from headers and body alone (Crypto Pay)."""

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookResult: ...


class WebhookReceiver:
    """A tiny web app standing in for ours: runs parse_webhook, answers 200 or its 4xx."""

    def __init__(self, verifier: WebhookVerifier) -> None:
        self.verifier = verifier
        self.reports: list[WebhookResult] = []
        self.rejections: list[WebhookRejected] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            report = self.verifier.parse_webhook(request.headers, await request.read())
        except WebhookRejected as exc:
            self.rejections.append(exc)
            return web.Response(status=exc.http_status, text=exc.reason)
        self.reports.append(report)
        return web.Response(text="ok")

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def oneplat_emulator() -> AsyncIterator[OnePlatEmulator]:
    async with OnePlatEmulator(shop_id=SHOP_ID, secret=SECRET) as emulator:
        yield emulator


@pytest.fixture
def oneplat(session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator) -> OnePlatProvider:
    return OnePlatProvider(session, base_url=oneplat_emulator.url, shop_id=SHOP_ID, secret=SECRET)


@pytest.fixture
async def cryptopay_emulator() -> AsyncIterator[CryptoPayEmulator]:
    async with CryptoPayEmulator(token=TOKEN) as emulator:
        yield emulator


@pytest.fixture
def cryptobot(
    session: aiohttp.ClientSession, cryptopay_emulator: CryptoPayEmulator
) -> CryptoBotProvider:
    return CryptoBotProvider(
        session, api_url=cryptopay_emulator.url, token=TOKEN, paid_btn_url="https://t.me/spn_bot"
    )


@pytest.fixture
async def receiver_factory() -> AsyncIterator[
    Callable[[WebhookVerifier], Awaitable[WebhookReceiver]]
]:
    async with AsyncExitStack() as stack:

        async def start(verifier: WebhookVerifier) -> WebhookReceiver:
            return await stack.enter_async_context(WebhookReceiver(verifier))

        yield start


YOOKASSA_SHOP = "506751"
YOOKASSA_KEY = "test_Fh8hUAVVBGUGbjmlzba6TB0iyUbos_lueTHE-axOwM0"


@pytest.fixture
async def yookassa_emulator() -> AsyncIterator[YooKassaEmulator]:
    async with YooKassaEmulator(shop_id=YOOKASSA_SHOP, secret_key=YOOKASSA_KEY) as emulator:
        yield emulator


@pytest.fixture
def yookassa(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> YooKassaProvider:
    return YooKassaProvider(
        session,
        shop_id=YOOKASSA_SHOP,
        secret_key=YOOKASSA_KEY,
        api_url=yookassa_emulator.url,
        return_url="https://t.me/spn_bot",
    )


def yookassa_auth(shop_id: str = YOOKASSA_SHOP, secret_key: str = YOOKASSA_KEY) -> str:
    """The Authorization header value, built here rather than by the client under test."""
    return "Basic " + base64.b64encode(f"{shop_id}:{secret_key}".encode()).decode()
