"""The whole app through the emulators: real aiogram polling, real aiohttp server, real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from spnbot.app import Application
from spnbot.sandbox.stack import Sandbox
from spnbot.sandbox.telegram import SandboxUser
from spnbot.store import jobs as queue
from spnbot.store.models import Payment


@dataclass
class Stack:
    sandbox: Sandbox
    app: Application
    database_url: str
    data_dir: Path

    @property
    def tg(self) -> Any:
        return self.sandbox.telegram

    async def restart(self, **overrides: Any) -> None:
        """Stop the app process's parts and start a fresh Application on the same database."""
        await self.app.stop()
        settings = self.sandbox.settings(
            database_url=self.database_url, data_dir=self.data_dir, **overrides
        )
        self.app = await self.sandbox.start_app(settings)

    async def customer(self, user_id: int, *, language_code: str = "ru") -> SandboxUser:
        """A user who has pressed /start and accepted the terms, looking at the main menu."""
        texts, lang = self.app.texts, _lang(language_code)
        user = self.tg.user(user_id, first_name=f"U{user_id}", language_code=language_code)
        await user.send("/start")
        accept = texts(lang, "btn_accept")
        await self.tg.wait_for_message(user_id, predicate=lambda m: accept in m.button_texts)
        mark = self.tg.mark(user_id)
        await user.press(accept)
        menu = texts(lang, "btn_buy")
        await self.tg.wait_for_message(
            user_id, predicate=lambda m: menu in m.button_texts, after=mark
        )
        return user

    async def tap(self, user: SandboxUser, button: str, expect: str) -> Any:
        """Press a button and wait for the screen that must follow it."""
        return await user.tap(button, expect)

    async def pending_payment(
        self, user_id: int, provider: str, method: str | None = None, tariff: str = "1m"
    ) -> Payment:
        """A registered customer with an invoice created at the provider (real HTTP)."""
        self.tg.user(user_id, first_name=f"U{user_id}")
        await self.app.users.touch(user_id, username=None, first_name=None, language_code="ru")
        await self.app.users.accept_terms(user_id)
        plan = self.app.settings.tariff(tariff)
        assert plan is not None
        result = await self.app.purchases.start(user_id, plan, provider, method, "test")
        assert result.status == "created", result
        return await self.payment(result.public_id)

    async def payment(self, public_id: str) -> Payment:
        async with self.app.db.transaction() as session:
            row = (
                await session.execute(select(Payment).where(Payment.public_id == public_id))
            ).scalar_one()
            return row

    async def pending_payment_of(self, user_id: int, status: str = "pending") -> Payment:
        """The user's newest payment, which must be in ``status``."""
        async with self.app.db.transaction() as session:
            row = (
                (
                    await session.execute(
                        select(Payment)
                        .where(Payment.user_id == user_id)
                        .order_by(Payment.id.desc())
                    )
                )
                .scalars()
                .first()
            )
        assert row is not None and row.status == status, row and row.status
        return row

    async def reconciler_noop(self) -> bool:
        """One more reconciler pass changes nothing (after everything settled)."""
        outcomes = await self.app.reconciler.run_once()
        return not (set(outcomes) - {"no_change"})

    async def jobs_settled(self, timeout: float = 20.0) -> dict[str, int]:
        """Wait until no job is pending or running; returns the final counts by status."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with self.app.db.transaction() as session:
                counts = await queue.counts(session)
            busy = counts.get("pending", 0) + counts.get("running", 0)
            if not busy:
                return counts
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"jobs still busy after {timeout}s: {counts}")
            await asyncio.sleep(0.05)

    async def count(self, model: Any, *where: Any) -> int:
        async with self.app.db.transaction() as session:
            stmt = select(func.count()).select_from(model)
            for clause in where:
                stmt = stmt.where(clause)
            return int((await session.execute(stmt)).scalar_one())

    def success_messages(self, user_id: int, needle: str = "Оплата прошла успешно") -> int:
        return sum(1 for m in self.tg.messages(user_id) if needle in m.text)


def _lang(code: str) -> str:
    return "en" if code.startswith("en") else "ru"


@pytest.fixture
async def stack(database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with Sandbox() as sandbox:
        settings = sandbox.settings(
            database_url=database_url, data_dir=tmp_path, payment_check_interval=3600
        )
        app = await sandbox.start_app(settings)
        st = Stack(sandbox, app, database_url, tmp_path)
        try:
            yield st
        finally:
            await st.app.stop()
