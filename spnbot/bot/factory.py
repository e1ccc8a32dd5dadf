"""The aiogram Bot, pointed at Telegram or at the Bot API server in TELEGRAM_API_URL."""

from __future__ import annotations

import functools
from typing import Any

import aiogram.methods
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods.base import Response

from spnbot.config import TELEGRAM_API, Settings

# The Bot API methods SPN calls (building all ~150 would cost seconds at start-up).
USED_METHODS = (
    "AnswerCallbackQuery", "AnswerPreCheckoutQuery", "DeleteMessage", "DeleteWebhook",
    "EditMessageReplyMarkup", "EditMessageText", "GetChatMember", "GetMe", "GetUpdates",
    "GetWebhookInfo", "RefundStarPayment", "SendInvoice", "SendMessage", "SetMyCommands",
    "SetWebhook",
)  # fmt: skip


@functools.cache
def pinned_response_types() -> tuple[Any, ...]:
    """aiogram builds ``Response[T]`` for every call and pydantic caches such generic classes
    only weakly: after a garbage collection each is rebuilt, ~40 ms of CPU in the middle of
    a send. Holding them makes every later lookup a dictionary hit."""
    return tuple(
        Response[getattr(aiogram.methods, name).__returning__]  # type: ignore[misc]
        for name in USED_METHODS
    )


def make_bot(settings: Settings) -> Bot:
    pinned_response_types()
    session = AiohttpSession()
    if settings.telegram_api_url != TELEGRAM_API:
        # A local telegram-bot-api server, or the sandbox emulator.
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(settings.token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
