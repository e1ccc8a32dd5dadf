"""Telegram webhook mode: updates arrive on our aiohttp server, checked by the secret token."""

from __future__ import annotations

import hmac
import logging
from typing import Any, Final

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramNotFound
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from pydantic import ValidationError

from spnbot.payments import safe_json
from spnbot.web.bodies import BodyTooLarge, read_bounded

log = logging.getLogger(__name__)

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
# Telegram's updates are small; a message is at most 4096 characters.
MAX_UPDATE_BYTES: Final = 256 * 1024
MAX_UPDATE_DEPTH: Final = 24  # replies nest a message in a message; 24 is ample


class _CheckedUpdates(SimpleRequestHandler):
    """aiogram's handler, with the parts a stranger can reach made strict: the secret is
    compared as bytes (a non-ASCII header made ``compare_digest`` raise), and the body is
    bounded, parsed with bounded depth and validated before the dispatcher sees it, so
    malformed input is a 400 instead of a 500 that Telegram would redeliver."""

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, (self.secret_token or "").encode()):
            return web.Response(body="Unauthorized", status=401)
        try:
            body = await read_bounded(request, MAX_UPDATE_BYTES)
        except BodyTooLarge:
            return web.Response(text="update too large", status=413)
        try:
            update = Update.model_validate(
                safe_json.loads(body, max_depth=MAX_UPDATE_DEPTH), context={"bot": self.bot}
            )
        except (safe_json.UnsafeJson, UnicodeDecodeError, ValidationError) as exc:
            log.warning("telegram webhook: unreadable update (%s)", type(exc).__name__)
            return web.Response(text="not an update", status=400)
        try:
            result: TelegramMethod[Any] | None = await self.dispatcher.feed_webhook_update(
                self.bot, update, **self.data
            )
        except (TelegramBadRequest, TelegramForbiddenError, TelegramNotFound) as exc:
            # Telegram refused our reply (no such chat, blocked): a redelivery would only be
            # refused again. Network trouble and everything else still answer 500 (retry).
            log.warning("telegram webhook: reply refused (%s)", type(exc).__name__)
            return web.json_response({})
        return web.Response(body=self._build_response_writer(bot=self.bot, result=result))

    __call__ = handle


def mount_telegram_webhook(
    app: web.Application, *, dispatcher: Dispatcher, bot: Bot, path: str, secret: str
) -> None:
    # Handled before answering (not in the background): if this instance dies mid-update,
    # Telegram sees no 200 and delivers the update again.
    if not secret:
        raise ValueError("the Telegram webhook needs a secret token")
    handler = _CheckedUpdates(
        dispatcher=dispatcher, bot=bot, handle_in_background=False, secret_token=secret
    )
    handler.register(app, path=path)
