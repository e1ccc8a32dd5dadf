"""Real Remnawave webhook recordings (../shared/fixtures/remnawave) and ways to deliver them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import func, select, update

from spnbot.sandbox.stack import Sandbox
from spnbot.store.models import PANEL_DELIVERIES, USERS
from tests.e2e.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures" / "remnawave"
# The secret the recording panel ran with (WEBHOOK_SECRET_HEADER, see the fixtures' README).
SECRET = "Sp5nHarnessWebhookSecretAbcdefghijklmnopqrstuvwxyz0123456789ABCD"
PATH = "/remnawave-webhook"


@dataclass(frozen=True)
class Recording:
    name: str  # file name without .json, e.g. 008_user.revoked
    event: str
    headers: dict[str, str]
    raw_body: bytes

    @property
    def sent_at(self) -> datetime:
        return datetime.fromisoformat(self.headers["X-Remnawave-Timestamp"])

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw_body)
        return data


def recordings(version: str) -> list[Recording]:
    folder = FIXTURES / version / "webhooks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the Remnawave webhook recordings are missing: expected {folder} "
            "(the shared/ folder beside the repository, as in CI)"
        )
    out = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        out.append(
            Recording(path.stem, data["event"], dict(data["headers"]), data["raw_body"].encode())
        )
    assert out, f"no recordings in {folder}"
    return out


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(body: dict[str, Any], *, secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    """Headers and raw body for a delivery we compose ourselves, shaped like the panel's."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    return {
        "Content-Type": "application/json",
        "X-Remnawave-Signature": sign(raw, secret),
        "X-Remnawave-Timestamp": str(body["timestamp"]),
        "User-Agent": "Remnawave",
    }, raw


async def deliver(stack: Stack, headers: dict[str, str], raw: bytes) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{stack.app.port}{PATH}"
        async with http.post(url, data=raw, headers=headers) as response:
            if response.content_type == "application/json":
                return response.status, str((await response.json())["message"])
            return response.status, await response.text()


@asynccontextmanager
async def hook_stack(database_url: str, data_dir: Path, **overrides: Any) -> AsyncIterator[Stack]:
    """The real app with the panel webhook mounted (the recordings' secret)."""
    async with Sandbox() as sandbox:
        values: dict[str, Any] = {
            "payment_check_interval": 3600,
            "remnawave_webhook_secret": SecretStr(SECRET),
        }
        settings = sandbox.settings(
            database_url=database_url, data_dir=data_dir, **{**values, **overrides}
        )
        app = await sandbox.start_app(settings)
        await _stop_periodic_reminders()
        stack = Stack(sandbox, app, database_url, data_dir)
        try:
            yield stack
        finally:
            await stack.app.stop()


async def _stop_periodic_reminders() -> None:
    """The tests run the reminder scan themselves (``app.reminders.run_once()``): the app's own
    periodic pass, started with it, would race them for the same reminders."""
    periodic = [t for t in asyncio.all_tasks() if t.get_name() == "reminders"]
    for task in periodic:
        task.cancel()
    await asyncio.gather(*periodic, return_exceptions=True)
    assert periodic, "the app no longer runs a task named 'reminders'"


async def add_customer(
    stack: Stack,
    tg_id: int,
    *,
    panel_ref: str | None,
    expires_at: datetime | None,
    subscription_url: str | None = None,
    language: str = "ru",
) -> None:
    """A customer who accepted the terms, linked to a panel user as a grant would link them."""
    stack.tg.user(tg_id, first_name=f"U{tg_id}", language_code=language)
    await stack.app.users.touch(tg_id, username=None, first_name=None, language_code=language)
    await stack.app.users.accept_terms(tg_id)
    async with stack.app.db.transaction() as session:
        await session.execute(
            update(USERS)
            .where(USERS.c.tg_id == tg_id)
            .values(panel_ref=panel_ref, expires_at=expires_at, subscription_url=subscription_url)
        )


async def user_row(stack: Stack, tg_id: int) -> Any:
    async with stack.app.db.transaction() as session:
        return (await session.execute(select(USERS).where(USERS.c.tg_id == tg_id))).one()


async def deliveries(stack: Stack) -> int:
    async with stack.app.db.transaction() as session:
        return int(
            (await session.execute(select(func.count()).select_from(PANEL_DELIVERIES))).scalar_one()
        )


def texts_of(stack: Stack, tg_id: int) -> list[str]:
    return [m.plain_text for m in stack.tg.messages(tg_id)]


class RecordingDrift:
    """Stands in for the drift service: remembers whom it was asked to check."""

    def __init__(self) -> None:
        self.checked: list[int] = []

    async def check_user(self, telegram_id: int) -> None:
        self.checked.append(telegram_id)
