"""Telegram Stars: approve the checkout only for our pending payment; deliver on the receipt."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message, PreCheckoutQuery

from spnbot.bot.context import BotContext
from spnbot.bot.filters import PaidMessage
from spnbot.services.users import language_for


async def pre_checkout(query: PreCheckoutQuery, ctx: BotContext) -> None:
    error = await ctx.stars.precheckout_error(
        query.from_user.id, query.invoice_payload, query.currency, query.total_amount
    )
    if error is None:
        await query.answer(ok=True)
    else:
        lang = language_for(query.from_user.language_code)
        await query.answer(ok=False, error_message=ctx.texts(lang, error))


async def successful_payment(message: Message, ctx: BotContext) -> None:
    paid = message.successful_payment
    if paid is None or message.from_user is None:
        return
    # The confirmation message comes from the durable panel-sync job, like every provider's.
    await ctx.stars.paid(
        message.from_user.id,
        paid.invoice_payload,
        paid.currency,
        paid.total_amount,
        paid.telegram_payment_charge_id,
    )


def build() -> Router:
    router = Router(name="stars")
    router.pre_checkout_query.register(pre_checkout)
    router.message.register(successful_payment, PaidMessage())
    return router
