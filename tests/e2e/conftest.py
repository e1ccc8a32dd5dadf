"""The whole app through the emulators: real aiogram polling, real aiohttp server, real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spnbot.app import Application
from spnbot.sandbox.stack import Sandbox
from spnbot.sandbox.telegram import SandboxUser


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
        mark = self.tg.mark(user.id)
        await user.press(button)
        return await self.tg.wait_for_message(user.id, contains=expect, after=mark)


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
