"""Real HTTP between RemnawaveClient and RemnawaveEmulator, for both panel lines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from spnbot.panel.remnawave import RemnawaveClient
from spnbot.sandbox.remnawave import RemnawaveEmulator

TOKEN = "emulator-token"

MakeClient = Callable[..., RemnawaveClient]


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture(params=[3, 2], ids=["3.x", "2.x"])
def api_version(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
async def emulator(api_version: int) -> AsyncIterator[RemnawaveEmulator]:
    async with RemnawaveEmulator(api_token=TOKEN, api_version=api_version) as emu:
        yield emu


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def make_client(emulator: RemnawaveEmulator, session: aiohttp.ClientSession) -> MakeClient:
    def make(**overrides: object) -> RemnawaveClient:
        options: dict[str, object] = {
            "base_url": emulator.url,
            "token": TOKEN,
            "api_version": emulator.api_version,
            "squad_uuid": emulator.squad_uuid,
            "timeout": 2.0,
        }
        options.update(overrides)
        return RemnawaveClient(session, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def client(make_client: MakeClient) -> RemnawaveClient:
    return make_client()
