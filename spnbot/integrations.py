"""Outside services built from settings: one place for the app and `spnbot doctor` alike."""

from __future__ import annotations

import aiohttp

from spnbot.config import Settings
from spnbot.panel.remnawave import RemnawaveClient
from spnbot.payments import cryptobot, oneplat, yookassa
from spnbot.payments.base import PaymentProvider
from spnbot.payments.registry import ProviderRegistry
from spnbot.payments.stars import StarsInvoiceSender, StarsProvider


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


def build_registry(
    settings: Settings, http: aiohttp.ClientSession, *, stars_sender: StarsInvoiceSender
) -> ProviderRegistry:
    """Every configured provider, in the order the customer sees them. A new provider is one
    line here (its module builds it from its own settings, or None when they are unset)."""
    built: list[PaymentProvider | None] = [
        oneplat.build_provider(settings, http),
        cryptobot.build_provider(settings, http),
        yookassa.build_provider(settings, http),
        StarsProvider(stars_sender) if settings.stars_enabled else None,
    ]
    return ProviderRegistry(p for p in built if p is not None)
