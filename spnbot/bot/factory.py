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
from aiohttp import ClientSession

from spnbot.config import TELEGRAM_API, Settings
from spnbot.net.redirects import refuse_redirects

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


class NoRedirectSession(AiohttpSession):
    """aiogram's session, except that a 3xx is an error: every Bot API URL carries the token,
    and aiohttp would follow a redirect (or loop) and quote each URL in its error."""

    async def create_session(self) -> ClientSession:
        session = await super().create_session()
        # aiogram builds the ClientSession itself; its middlewares are read on every request.
        if refuse_redirects not in session._middlewares:
            session._middlewares = (*session._middlewares, refuse_redirects)
        return session


def make_bot(settings: Settings) -> Bot:
    pinned_response_types()
    session = NoRedirectSession()
    if settings.telegram_api_url != TELEGRAM_API:
        # A local telegram-bot-api server, or the sandbox emulator.
        session = NoRedirectSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(settings.token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
