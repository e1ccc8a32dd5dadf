"""Which API line the panel speaks: detected from the panel, cached, and reported by doctor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from spnbot.ops.doctor import run_doctor
from spnbot.panel.base import PanelAuthError, PanelUnavailable, PanelVersionUnknown
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.sandbox.remnawave import RemnawaveEmulator
from spnbot.sandbox.stack import Sandbox
from tests.panel.conftest import MakeClient
from tests.panel.recordings import LINES, load, replay_server

PROBE = "/api/users/stream"


def probes(emulator: RemnawaveEmulator) -> int:
    return sum(1 for r in emulator.requests if r.path == PROBE and r.query.get("telegramId") == "0")


async def test_auto_detects_and_serves_the_line(
    make_client: MakeClient, emulator: RemnawaveEmulator
) -> None:
    client = make_client(api_version="auto")
    assert client.api_version is None  # nothing asked yet

    expire = datetime.now(UTC) + timedelta(days=3)
    user = await client.create_user(username="tg_77", telegram_id=77, expire_at=expire)
    assert await client.find_by_telegram_id(77) == user
    assert await client.get_user(user.ref) == user

    assert client.api_version == emulator.api_version
    assert await client.detected_version() == emulator.api_version
    assert await client.version_mismatch() is None
    assert probes(emulator) == 1  # asked once, then cached


async def test_concurrent_first_use_probes_once(
    make_client: MakeClient, emulator: RemnawaveEmulator
) -> None:
    client = make_client(api_version="auto")
    found = await asyncio.gather(*(client.find_by_telegram_id(5) for _ in range(10)))
    assert found == [None] * 10
    assert probes(emulator) == 1


async def test_pinned_wrong_line_is_reported(
    make_client: MakeClient, emulator: RemnawaveEmulator
) -> None:
    other = 2 if emulator.api_version == 3 else 3
    client = make_client(api_version=other)

    assert await client.detected_version() == emulator.api_version
    message = await client.version_mismatch()
    assert message is not None
    assert f"REMNAWAVE_API_VERSION={other}" in message
    assert f"speaks API {emulator.api_version}.x" in message
    assert client.api_version == other  # pinned stays pinned: the caller decides


async def test_probe_failures_are_not_cached(
    make_client: MakeClient, emulator: RemnawaveEmulator
) -> None:
    client = make_client(api_version="auto")
    emulator.set_failure("503")
    with pytest.raises(PanelUnavailable):
        await client.detected_version()
    emulator.set_failure(None)
    assert await client.detected_version() == emulator.api_version


async def test_probe_with_a_wrong_token(
    make_client: MakeClient, emulator: RemnawaveEmulator
) -> None:
    with pytest.raises(PanelAuthError):
        await make_client(api_version="auto", token="wrong").detected_version()


async def test_something_else_at_the_url(
    make_client: MakeClient, emulator: RemnawaveEmulator
) -> None:
    # A panel is there but base_url points below it: every route is Nest's 404.
    client = make_client(api_version="auto", base_url=emulator.url + "/x")
    with pytest.raises(PanelVersionUnknown, match=r"neither Remnawave 3\.x nor 2\.x"):
        await client.detected_version()


@pytest.mark.parametrize("version", list(LINES))
async def test_auto_against_the_recorded_panel(version: str) -> None:
    """The real panel's recorded answers, served back: detection and the lookups SPN makes."""
    line = LINES[version]
    async with replay_server(load(version)) as url, aiohttp.ClientSession() as session:
        client = RemnawaveClient(session, base_url=url, token="t")
        assert await client.detected_version() == line
        user = await client.find_by_telegram_id(123456789)
        assert user is not None and user.username == "tg_123456789"
        assert await client.find_by_telegram_id(42) is None
        by_name = await client.find_by_username("tg_123456789")
        assert by_name is not None and by_name.ref == user.ref
        assert await client.find_by_username("nobody_here") is None
        again = await client.get_user(user.ref)
        assert again is not None and again.short_uuid == user.short_uuid

        pinned = RemnawaveClient(session, base_url=url, token="t", api_version=5 - line)
        assert "speaks API" in (await pinned.version_mismatch() or "")


@pytest.mark.parametrize("panel", [3, 2])
@pytest.mark.parametrize("setting", ["auto", 3, 2])
async def test_doctor_names_the_line(tmp_path: Path, panel: int, setting: str | int) -> None:
    async with Sandbox(panel_version=panel) as sandbox:
        settings = sandbox.settings(
            database_url=None, data_dir=tmp_path, remnawave_api_version=setting
        )
        lines: list[str] = []
        await run_doctor(settings, lines.append, timeout=2.0)
    line = next(text for text in lines if "Remnawave panel" in text)
    if setting == "auto":
        assert line.startswith("ok   ") and f"(API {panel}.x, detected)" in line, line
    elif setting == panel:
        assert line.startswith("ok   ") and f"(API {panel}.x, as set, confirmed)" in line, line
    else:
        assert line.startswith("FAIL Remnawave panel: "), line
        assert f"REMNAWAVE_API_VERSION={setting} but the panel speaks API {panel}.x" in line
