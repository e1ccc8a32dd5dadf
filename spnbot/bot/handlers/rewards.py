"""🎁 Получить подарок, 👥 Бонус за друга, 🎟 Ввести промокод."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from spnbot.bot import callbacks as cb
from spnbot.bot import keyboards
from spnbot.bot.context import BotContext
from spnbot.bot.filters import DataIs
from spnbot.bot.render import show
from spnbot.services.rewards import GiftResult, PromoResult

MEMBER_STATUSES = {"member", "administrator", "creator", "restricted"}


class PromoInput(StatesGroup):
    code = State()


def _channel_url(channel: str) -> str:
    return f"https://t.me/{channel.removeprefix('@')}"


async def gift_screen(query: CallbackQuery, ctx: BotContext, lang: str) -> None:
    await query.answer()
    channel = ctx.settings.news_channel_username
    if channel is None:
        await show(query, ctx.texts(lang, "gift_unavailable"), keyboards.back(ctx, lang))
        return
    text = ctx.texts(lang, "gift_intro", channel=channel, days=ctx.rewards.gift_days)
    open_channel = ctx.texts(lang, "btn_open_channel")
    rows = [
        [InlineKeyboardButton(text=open_channel, url=_channel_url(channel))],
        [keyboards.button(ctx, lang, "btn_check_gift", cb.GIFT_CLAIM)],
        [keyboards.button(ctx, lang, "btn_back", cb.MENU)],
    ]
    markup = InlineKeyboardMarkup(inline_keyboard=rows)
    await show(query, text, markup)


async def claim_gift(query: CallbackQuery, bot: Bot, ctx: BotContext, lang: str) -> None:
    channel = ctx.settings.news_channel_username
    user_id = query.from_user.id
    if channel is None:
        await query.answer(ctx.texts(lang, "gift_unavailable"), show_alert=True)
        return
    if await ctx.rewards.gift_claimed(user_id):
        await query.answer(ctx.texts(lang, "gift_already"), show_alert=True)
        return
    try:
        member = await bot.get_chat_member(channel, user_id)
    except TelegramAPIError:
        # The bot is not in the channel or Telegram is down: say so, grant nothing.
        await query.answer(ctx.texts(lang, "gift_unavailable"), show_alert=True)
        return
    if member.status not in MEMBER_STATUSES:
        await query.answer(ctx.texts(lang, "gift_not_subscribed", channel=channel), show_alert=True)
        return
    result, _grant = await ctx.rewards.claim_gift(user_id)
    key = "gift_granted" if result is GiftResult.GRANTED else "gift_already"
    await query.answer(ctx.texts(lang, key, days=ctx.rewards.gift_days), show_alert=True)


async def referral_screen(query: CallbackQuery, ctx: BotContext, lang: str) -> None:
    await query.answer()
    stats = await ctx.rewards.referral_stats(query.from_user.id)
    link = f"https://t.me/{ctx.bot_username}?start=ref_{query.from_user.id}"
    text = ctx.texts(
        lang,
        "referral_screen",
        days=ctx.settings.referral_bonus_days,
        link=link,
        invited=stats.invited,
        activated=stats.activated,
    )
    await show(query, text, keyboards.back(ctx, lang))


async def promo_prompt(query: CallbackQuery, state: FSMContext, ctx: BotContext, lang: str) -> None:
    await query.answer()
    await state.set_state(PromoInput.code)
    await show(query, ctx.texts(lang, "promo_prompt"), keyboards.back(ctx, lang, cb.PROMO_CANCEL))


async def promo_cancel(query: CallbackQuery, state: FSMContext, ctx: BotContext, lang: str) -> None:
    await state.clear()
    await query.answer()
    await show(query, ctx.texts(lang, "main_menu"), keyboards.main_menu(ctx, lang))


async def promo_code(message: Message, state: FSMContext, ctx: BotContext, lang: str) -> None:
    text = (message.text or "").strip()
    # Codes are printable; NUL and other control characters (PostgreSQL refuses NUL in text)
    # are a typo or an attack, never a code.
    if not text or text.startswith("/") or len(text) > 32 or not text.isprintable():
        await message.answer(
            ctx.texts(lang, "promo_bad_input"),
            reply_markup=keyboards.back(ctx, lang, cb.PROMO_CANCEL),
        )
        return
    assert message.from_user is not None
    redemption = await ctx.rewards.redeem(message.from_user.id, text)
    if redemption.result is PromoResult.GRANTED:
        await state.clear()
        await message.answer(
            ctx.texts(lang, "promo_granted", days=redemption.days),
            reply_markup=keyboards.main_menu(ctx, lang),
        )
        return
    await message.answer(
        ctx.texts(lang, f"promo_{redemption.result}"),
        reply_markup=keyboards.back(ctx, lang, cb.PROMO_CANCEL),
    )


def build() -> Router:
    router = Router(name="rewards")
    router.callback_query.register(gift_screen, DataIs(cb.GIFT))
    router.callback_query.register(claim_gift, DataIs(cb.GIFT_CLAIM))
    router.callback_query.register(referral_screen, DataIs(cb.REFERRAL))
    router.callback_query.register(promo_prompt, DataIs(cb.PROMO))
    router.callback_query.register(promo_cancel, DataIs(cb.PROMO_CANCEL))
    router.message.register(promo_code, StateFilter(PromoInput.code))
    return router
