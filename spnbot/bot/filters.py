"""Async filters. aiogram runs a *sync* filter (``F.data == x`` included) in a worker thread,
one round trip per filter tried; these stay on the event loop."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Message


class DataIs(Filter):
    """The pressed button's callback data equals ``value``."""

    def __init__(self, value: str) -> None:
        self.value = value

    async def __call__(self, query: CallbackQuery) -> bool:
        return query.data == self.value


class PaidMessage(Filter):
    """A ``successful_payment`` service message (Telegram Stars)."""

    async def __call__(self, message: Message) -> bool:
        return message.successful_payment is not None
