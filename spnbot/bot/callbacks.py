"""Stateless callback data: every button carries what its handler needs."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData

# Plain screens
MENU = "menu"
BUY = "buy"
MY_SUB = "my_sub"
HOWTO = "howto"
ACCEPT_TERMS = "terms:accept"
GIFT = "gift"
GIFT_CLAIM = "gift:claim"
REFERRAL = "referral"
PROMO = "promo"
PROMO_CANCEL = "promo:cancel"


class TariffCb(CallbackData, prefix="tariff"):
    code: str


class PayCb(CallbackData, prefix="pay"):
    code: str
    provider: str
    method: str = ""


class CheckCb(CallbackData, prefix="check"):
    payment: str
