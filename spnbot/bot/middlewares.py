"""Loads the customer for each update and keeps them at the terms until they accept."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from spnbot.bot import callbacks as cb
from spnbot.bot import keyboards
from spnbot.bot.context import BotContext
from spnbot.services.users import language_for

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ProfileMiddleware(BaseMiddleware):
    """Injects ``profile`` and ``lang``; a user who has not accepted the terms sees them again."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        ctx: BotContext = data["ctx"]
        user = getattr(event, "from_user", None)
        # Every handler takes ``lang``: a message with no sender (an anonymous group admin)
        # gets the default instead of a TypeError.
        lang = language_for(user.language_code if user is not None else None)
        data["lang"] = lang
        if user is None or user.is_bot:
            return await handler(event, data)
        if isinstance(event, Message) and _is_start(event):
            return await handler(event, data)  # /start creates the user itself (with referrer)
        profile = await ctx.users.get(user.id)
        if profile is None:
            profile = await ctx.users.touch(
                user.id,
                username=user.username,
                first_name=user.first_name,
                language_code=user.language_code,
            )
        data["profile"] = profile
        if (
            profile.terms_accepted
            or _is_accept(event)
            or _is_payment(event)
            or user.id in ctx.settings.admins  # operators run commands without the customer gate
        ):
            return await handler(event, data)
        markup = keyboards.terms(ctx, lang)
        if isinstance(event, CallbackQuery):
            await event.answer()
            if event.message is not None:
                await event.message.answer(ctx.texts(lang, "terms_prompt"), reply_markup=markup)
        elif isinstance(event, Message):
            await event.answer(ctx.texts(lang, "terms_prompt"), reply_markup=markup)
        return None


def _is_start(message: Message) -> bool:
    words = (message.text or "").split(maxsplit=1)  # empty for a whitespace-only message
    return bool(words) and words[0].split("@")[0] == "/start"


def _is_accept(event: TelegramObject) -> bool:
    return isinstance(event, CallbackQuery) and event.data == cb.ACCEPT_TERMS


def _is_payment(event: TelegramObject) -> bool:
    # Money already moving must never be blocked by a UI gate.
    return isinstance(event, Message) and event.successful_payment is not None
