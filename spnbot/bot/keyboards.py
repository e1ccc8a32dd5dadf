"""Inline keyboards, built from texts so each language gets its own labels."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from spnbot.bot import callbacks as cb
from spnbot.bot.context import BotContext
from spnbot.bot.limits import describe
from spnbot.domain.tariffs import Tariff
from spnbot.payments.registry import Offer
from spnbot.services.devices import device_key
from spnbot.services.users import Profile


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


def main_menu(ctx: BotContext, lang: str, profile: Profile | None = None) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    # The trial is offered to a customer who never had a subscription (the press re-checks).
    if ctx.settings.trial_enabled and profile is not None and profile.expires_at is None:
        kb.row(button(ctx, lang, "btn_trial", cb.TRIAL))
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
        if not tariff.limits.is_empty:
            label += f" · {describe(ctx.texts, lang, tariff.limits)}"
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


def subscription(ctx: BotContext, lang: str, *, manage: bool = False) -> InlineKeyboardMarkup:
    """``manage``: the customer has a panel user, so devices, a new link and the QR apply."""
    rows = [[button(ctx, lang, "btn_renew", cb.BUY)]]
    if manage:
        rows.append([button(ctx, lang, "btn_qr", cb.SUB_QR)])
        rows.append(
            [
                button(ctx, lang, "btn_devices", cb.DEVICES),
                button(ctx, lang, "btn_new_link", cb.NEW_LINK),
            ]
        )
    rows.append([button(ctx, lang, "btn_back", cb.MENU)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def devices(ctx: BotContext, lang: str, names: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """One delete button per device, by (hwid, shown name)."""
    rows = [
        [
            InlineKeyboardButton(
                # Button labels are plain text: no HTML escaping of the device's name.
                text=ctx.texts.template(lang, "btn_delete_device").format(name=name),
                callback_data=cb.DeviceCb(action="ask", key=device_key(hwid)).pack(),
            )
        ]
        for hwid, name in names
    ]
    rows.append([button(ctx, lang, "btn_back", cb.MY_SUB)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm(ctx: BotContext, lang: str, yes_key: str, yes: str, no: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[button(ctx, lang, yes_key, yes), button(ctx, lang, "btn_cancel", no)]]
    )
