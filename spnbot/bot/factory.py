"""The aiogram Bot, pointed at Telegram or at the Bot API server in TELEGRAM_API_URL."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from spnbot.config import TELEGRAM_API, Settings


def make_bot(settings: Settings) -> Bot:
    session = AiohttpSession()
    if settings.telegram_api_url != TELEGRAM_API:
        # A local telegram-bot-api server, or the sandbox emulator.
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(settings.token, session=session, default=DefaultBotProperties(parse_mode="HTML"))
