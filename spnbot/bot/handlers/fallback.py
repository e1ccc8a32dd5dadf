"""Whatever no other handler took: odd messages and stale buttons get the menu, never an error."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from spnbot.bot import keyboards
from spnbot.bot.context import BotContext


async def any_message(message: Message, ctx: BotContext, lang: str) -> None:
    await message.answer(
        ctx.texts(lang, "fallback_hint"), reply_markup=keyboards.main_menu(ctx, lang)
    )


async def stale_button(query: CallbackQuery, ctx: BotContext, lang: str) -> None:
    await query.answer(ctx.texts(lang, "stale_button"))
    if query.message is not None:
        await query.bot.send_message(  # type: ignore[union-attr]
            query.from_user.id,
            ctx.texts(lang, "main_menu"),
            reply_markup=keyboards.main_menu(ctx, lang),
        )


def build() -> Router:
    router = Router(name="fallback")
    router.message.register(any_message)
    router.callback_query.register(stale_button)
    return router
