"""Showing a screen: edit the pressed message in place, or send a new one when we cannot."""

from __future__ import annotations

import contextlib

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message


async def show(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    message = query.message
    if isinstance(message, Message) and message.text is not None:
        try:
            await message.edit_text(text, reply_markup=markup, disable_web_page_preview=True)
            return
        except TelegramBadRequest as exc:
            if "message is not modified" in str(exc):
                return
            # Too old to edit or deleted: fall through and send a fresh screen.
    if message is not None:
        with contextlib.suppress(TelegramBadRequest):
            await query.bot.send_message(  # type: ignore[union-attr]
                message.chat.id, text, reply_markup=markup, disable_web_page_preview=True
            )
