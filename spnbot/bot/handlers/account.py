"""🔐 Моя подписка and 📲 Как подключиться."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from spnbot.bot import callbacks as cb
from spnbot.bot import keyboards
from spnbot.bot.context import BotContext
from spnbot.bot.filters import DataIs
from spnbot.bot.render import show
from spnbot.bot.texts import format_dt, format_left
from spnbot.domain.expiry import time_left, utcnow
from spnbot.services.users import Profile


async def my_subscription(
    query: CallbackQuery, ctx: BotContext, lang: str, profile: Profile
) -> None:
    await query.answer()
    view = await ctx.subscriptions.view(profile)
    if view.expires_at is None:
        text = ctx.texts(lang, "my_sub_none")
    elif not view.active:
        text = ctx.texts(lang, "my_sub_expired", expires=format_dt(view.expires_at, lang))
    elif not view.subscription_url:
        text = ctx.texts(lang, "my_sub_pending", expires=format_dt(view.expires_at, lang))
    else:
        text = ctx.texts(
            lang,
            "my_sub_active",
            expires=format_dt(view.expires_at, lang),
            left=format_left(ctx.texts, lang, time_left(view.expires_at, utcnow())),
            subscription_url=view.subscription_url,
        )
    if not view.live:
        text += ctx.texts(lang, "my_sub_stale")
    manage = bool(profile.panel_ref and view.subscription_url and view.active)
    await show(query, text, keyboards.subscription(ctx, lang, manage=manage))


async def howto(query: CallbackQuery, ctx: BotContext, lang: str) -> None:
    await query.answer()
    rows = [[InlineKeyboardButton(text=name, url=url)] for name, url in ctx.settings.apps]
    rows.append([InlineKeyboardButton(text=ctx.texts(lang, "btn_back"), callback_data=cb.MENU)])
    await show(query, ctx.texts(lang, "howto"), InlineKeyboardMarkup(inline_keyboard=rows))


def build() -> Router:
    router = Router(name="account")
    router.callback_query.register(my_subscription, DataIs(cb.MY_SUB))
    router.callback_query.register(howto, DataIs(cb.HOWTO))
    return router
