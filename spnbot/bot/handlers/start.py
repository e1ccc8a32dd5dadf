"""/start (with an optional ref_<id> deep link), the terms, and the main menu."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from spnbot.bot import callbacks as cb
from spnbot.bot import keyboards
from spnbot.bot.context import BotContext
from spnbot.bot.filters import DataIs
from spnbot.bot.render import show
from spnbot.services.users import Profile

# Telegram ids are positive and fit 64 bits; a deep link is at most 64 characters, but a
# forged one may be anything: "ref_²" passes isdigit(), 4000 zeros pass int().
MAX_REFERRER_ID = 2**63 - 1
MAX_ID_DIGITS = 19


def parse_referrer(args: str | None) -> int | None:
    """The referrer's id from ``ref_<id>``; None for anything that is not a plausible id."""
    if not args or not args.startswith("ref_"):
        return None
    tail = args.removeprefix("ref_")
    if not (0 < len(tail) <= MAX_ID_DIGITS and tail.isascii() and tail.isdigit()):
        return None
    value = int(tail)
    return value if 0 < value <= MAX_REFERRER_ID else None


async def start(
    message: Message, command: CommandObject, state: FSMContext, ctx: BotContext, lang: str
) -> None:
    await state.clear()
    user = message.from_user
    if user is None:
        return
    profile = await ctx.users.touch(
        user.id,
        username=user.username,
        first_name=user.first_name,
        language_code=user.language_code,
        referrer_id=parse_referrer(command.args),
    )
    if not profile.terms_accepted:
        await message.answer(
            ctx.texts(lang, "terms_prompt"), reply_markup=keyboards.terms(ctx, lang)
        )
        return
    await message.answer(
        ctx.texts(lang, "main_menu"), reply_markup=keyboards.main_menu(ctx, lang, profile)
    )


async def accept_terms(query: CallbackQuery, ctx: BotContext, lang: str, profile: Profile) -> None:
    await ctx.users.accept_terms(query.from_user.id)
    await query.answer(ctx.texts(lang, "terms_accepted"))
    await show(query, ctx.texts(lang, "main_menu"), keyboards.main_menu(ctx, lang, profile))


async def menu(
    query: CallbackQuery, state: FSMContext, ctx: BotContext, lang: str, profile: Profile
) -> None:
    await state.clear()
    await query.answer()
    await show(query, ctx.texts(lang, "main_menu"), keyboards.main_menu(ctx, lang, profile))


def build() -> Router:
    router = Router(name="start")
    router.message.register(start, CommandStart())
    router.callback_query.register(accept_terms, DataIs(cb.ACCEPT_TERMS))
    router.callback_query.register(menu, DataIs(cb.MENU))
    return router
