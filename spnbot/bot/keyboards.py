"""Inline keyboards, built from texts so each language gets its own labels."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from spnbot.bot import callbacks as cb
from spnbot.bot.context import BotContext
from spnbot.domain.tariffs import Tariff
from spnbot.payments.registry import Offer


def offer_label(offer: Offer) -> str:
    """A provider's texts are found by name: ``btn_method_<provider>[_<method>]``."""
    suffix = f"_{offer.method}" if offer.method else ""
    return f"btn_method_{offer.provider}{suffix}"


def button(ctx: BotContext, lang: str, key: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=ctx.texts(lang, key), callback_data=data)


def back(ctx: BotContext, lang: str, to: str = cb.MENU) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[button(ctx, lang, "btn_back", to)]])


def terms(ctx: BotContext, lang: str) -> InlineKeyboardMarkup:
    rows = [[button(ctx, lang, "btn_accept", cb.ACCEPT_TERMS)]]
    if ctx.settings.telegraph_agreement_url:
        rows.append(
            [
                InlineKeyboardButton(
                    text=ctx.texts(lang, "btn_read_terms"),
                    url=ctx.settings.telegraph_agreement_url,
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def main_menu(ctx: BotContext, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.row(button(ctx, lang, "btn_buy", cb.BUY))
    kb.row(button(ctx, lang, "btn_my_subscription", cb.MY_SUB))
    kb.row(button(ctx, lang, "btn_howto", cb.HOWTO))
    kb.row(button(ctx, lang, "btn_gift", cb.GIFT), button(ctx, lang, "btn_referral", cb.REFERRAL))
    kb.row(button(ctx, lang, "btn_promo", cb.PROMO))
    kb.row(InlineKeyboardButton(text=ctx.texts(lang, "btn_support"), url=ctx.settings.support_url))
    return kb.as_markup()


def tariffs(ctx: BotContext, lang: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for tariff in ctx.settings.tariffs:
        label = ctx.texts(lang, "tariff_button", months=tariff.months, price=tariff.rub)
        kb.row(InlineKeyboardButton(text=label, callback_data=cb.TariffCb(code=tariff.code).pack()))
    kb.row(button(ctx, lang, "btn_back", cb.MENU))
    return kb.as_markup()


def methods(ctx: BotContext, lang: str, tariff: Tariff) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for offer in ctx.offers():
        data = cb.PayCb(code=tariff.code, provider=offer.provider, method=offer.method or "")
        kb.row(button(ctx, lang, offer_label(offer), data.pack()))
    kb.row(button(ctx, lang, "btn_back", cb.BUY))
    return kb.as_markup()


def invoice(
    ctx: BotContext, lang: str, *, pay_url: str | None, pay_key: str, payment: str
) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    if pay_url:
        rows.append([InlineKeyboardButton(text=ctx.texts(lang, pay_key), url=pay_url)])
    rows.append([button(ctx, lang, "btn_check_payment", cb.CheckCb(payment=payment).pack())])
    rows.append([button(ctx, lang, "btn_back", cb.BUY)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def subscription(ctx: BotContext, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(ctx, lang, "btn_renew", cb.BUY)],
            [button(ctx, lang, "btn_back", cb.MENU)],
        ]
    )
