"""Outside services built from settings: one place for the app and `spnbot doctor` alike."""

from __future__ import annotations

import aiohttp

from spnbot.config import Settings
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.payments import cryptobot
from spnbot.payments.cryptobot import CryptoBotProvider
from spnbot.payments.oneplat import OnePlatProvider


def make_panel(
    settings: Settings, http: aiohttp.ClientSession, *, timeout: float = 10.0
) -> RemnawaveClient | None:
    s = settings
    if not (s.remnawave_base_url and s.remnawave_api_token):
        return None
    return RemnawaveClient(
        http,
        base_url=s.remnawave_base_url,
        token=s.remnawave_api_token.get_secret_value(),
        api_version=s.remnawave_api_version,
        squad_uuid=s.default_squad_uuid,
        api_key=s.remnawave_api_key.get_secret_value() if s.remnawave_api_key else None,
        timeout=timeout,
    )


def make_oneplat(
    settings: Settings, http: aiohttp.ClientSession, *, timeout: float = 15.0
) -> OnePlatProvider | None:
    s = settings
    if not (s.oneplat_shop_id and s.oneplat_shop_secret):
        return None
    return OnePlatProvider(
        http,
        base_url=s.oneplat_base_url,
        shop_id=s.oneplat_shop_id,
        secret=s.oneplat_shop_secret.get_secret_value(),
        timeout=timeout,
    )


def make_cryptobot(
    settings: Settings, http: aiohttp.ClientSession, *, timeout: float = 15.0
) -> CryptoBotProvider | None:
    return cryptobot.build_provider(settings, http, timeout=timeout)
