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
TRIAL = "trial"
DEVICES = "devices"
NEW_LINK = "link:new"
NEW_LINK_CONFIRM = "link:confirm"
SUB_QR = "my_sub:qr"


class TariffCb(CallbackData, prefix="tariff"):
    code: str


class PayCb(CallbackData, prefix="pay"):
    code: str
    provider: str
    method: str = ""


class CheckCb(CallbackData, prefix="check"):
    payment: str


class DeviceCb(CallbackData, prefix="dev"):
    action: str  # "ask" (confirmation) or "del"
    key: str  # a digest of the HWID (services.devices.device_key)
