"""A sandbox user: the emulator's user-side API bound to one user id."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spnbot.sandbox.telegram_models import SentMessage

if TYPE_CHECKING:
    from spnbot.sandbox.telegram import TelegramEmulator


class SandboxUser:
    def __init__(self, emulator: TelegramEmulator, user_id: int) -> None:
        self.emulator = emulator
        self.id = user_id

    def __repr__(self) -> str:
        return f"SandboxUser({self.id})"

    async def send(self, text: str) -> dict[str, Any]:
        return await self.emulator.send_text(self.id, text)

    async def send_text(self, text: str) -> dict[str, Any]:
        return await self.emulator.send_text(self.id, text)

    async def send_sticker(self) -> dict[str, Any]:
        return await self.emulator.send_sticker(self.id)

    async def press(self, button_text: str, *, message_id: int | None = None) -> str:
        return await self.emulator.press(self.id, button_text, message_id=message_id)

    async def tap(self, button_text: str, expect: str, *, timeout: float = 5.0) -> SentMessage:
        """Press a button and wait for the screen that must follow it (new or edited)."""
        mark = self.emulator.mark(self.id)
        await self.press(button_text)
        return await self.emulator.wait_for_message(
            self.id, contains=expect, after=mark, timeout=timeout
        )

    def button_url(self, button_text: str, *, message_id: int | None = None) -> str:
        return self.emulator.button_url(self.id, button_text, message_id=message_id)

    async def pay_invoice(
        self, *, message_id: int | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        return await self.emulator.pay_invoice(self.id, message_id=message_id, timeout=timeout)

    async def resend_successful_payment(self, charge_id: str) -> dict[str, Any]:
        return await self.emulator.resend_successful_payment(self.id, charge_id)

    def set_chat_member(self, chat: str, status: str) -> None:
        self.emulator.set_chat_member(chat, self.id, status)

    def block(self) -> None:
        self.emulator.block(self.id)

    def unblock(self) -> None:
        self.emulator.unblock(self.id)

    def messages(self) -> list[SentMessage]:
        return self.emulator.messages(self.id)

    def last_message(self) -> SentMessage | None:
        return self.emulator.last_message(self.id)

    def reply_keyboard(self) -> list[list[str]] | None:
        return self.emulator.reply_keyboard(self.id)

    def mark(self) -> int:
        return self.emulator.mark(self.id)

    async def wait_for_message(
        self,
        *,
        contains: str | None = None,
        predicate: Callable[[SentMessage], bool] | None = None,
        timeout: float = 5.0,
        after: int | None = None,
    ) -> SentMessage:
        return await self.emulator.wait_for_message(
            self.id, contains=contains, predicate=predicate, timeout=timeout, after=after
        )

    def transcript(self) -> str:
        return self.emulator.transcript(self.id)
