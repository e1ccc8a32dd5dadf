"""Telegram webhook mode: updates arrive on our aiohttp server, checked by the secret token."""

from __future__ import annotations

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web


def mount_telegram_webhook(
    app: web.Application, *, dispatcher: Dispatcher, bot: Bot, path: str, secret: str
) -> None:
    # Handled before answering (not in the background): if this instance dies mid-update,
    # Telegram sees no 200 and delivers the update again. aiogram answers 401 to a request
    # without the right X-Telegram-Bot-Api-Secret-Token, compared in constant time.
    handler = SimpleRequestHandler(
        dispatcher=dispatcher, bot=bot, handle_in_background=False, secret_token=secret
    )
    handler.register(app, path=path)
