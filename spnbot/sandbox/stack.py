"""All the emulators and the real app wired to them: used by the demo, the tests and benchmarks."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from spnbot.app import Application
from spnbot.config import Settings
from spnbot.payments import cryptobot, oneplat, yookassa
from spnbot.sandbox.cryptopay import CryptoPayEmulator
from spnbot.sandbox.lifecycle import StartStop
from spnbot.sandbox.oneplat import OnePlatEmulator
from spnbot.sandbox.remnawave import RemnawaveEmulator
from spnbot.sandbox.telegram import TelegramEmulator
from spnbot.sandbox.yookassa import YooKassaEmulator

# Sandbox credentials: they open nothing but the emulators on this machine.
BOT_TOKEN = "7000000001:SANDBOX-bot-token-not-for-production"
PANEL_TOKEN = "sandbox-remnawave-api-token"
SHOP_ID = "4242"
SHOP_SECRET = "sandbox-1plat-shop-secret"
CRYPTO_TOKEN = "4242:SANDBOX-crypto-pay-token"
YOOKASSA_SHOP_ID = "424242"
YOOKASSA_SECRET = "test_SANDBOX-yookassa-secret-key"
ADMIN_ID = 900000001
NEWS_CHANNEL = "@spn_news"


class Sandbox(StartStop):
    """The emulated outside world. ``async with Sandbox() as sb`` starts and stops it."""

    def __init__(self, *, panel_version: int = 3, bot_token: str = BOT_TOKEN) -> None:
        self.bot_token = bot_token
        self.telegram = TelegramEmulator(bot_token=bot_token)
        self.panel = RemnawaveEmulator(api_token=PANEL_TOKEN, api_version=panel_version)
        self.oneplat = OnePlatEmulator(shop_id=SHOP_ID, secret=SHOP_SECRET)
        self.cryptopay = CryptoPayEmulator(token=CRYPTO_TOKEN)
        self.yookassa = YooKassaEmulator(shop_id=YOOKASSA_SHOP_ID, secret_key=YOOKASSA_SECRET)

    async def start(self) -> None:
        for emulator in (self.telegram, self.panel, self.oneplat, self.cryptopay, self.yookassa):
            await emulator.start()
        # The operator has talked to the bot before, so admin notices can reach them.
        self.telegram.user(ADMIN_ID, first_name="Operator", language_code="ru")
        # The operator's news channel exists (the gift checks membership in it).
        self.telegram.set_chat_member(NEWS_CHANNEL, ADMIN_ID, "creator")

    async def stop(self) -> None:
        for emulator in (self.yookassa, self.cryptopay, self.oneplat, self.panel, self.telegram):
            with contextlib.suppress(Exception):
                await emulator.stop()

    def settings(self, *, database_url: str | None, data_dir: Path, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bot_token": SecretStr(self.bot_token),
            "admin_ids": (ADMIN_ID,),
            "telegram_api_url": self.telegram.url,
            "remnawave_base_url": self.panel.url,
            "remnawave_api_token": SecretStr(PANEL_TOKEN),
            "remnawave_api_version": self.panel.api_version,
            "default_squad_uuid": self.panel.squad_uuid,
            "oneplat_shop_id": SHOP_ID,
            "oneplat_shop_secret": SecretStr(SHOP_SECRET),
            "oneplat_base_url": self.oneplat.url,
            "cryptobot_token": SecretStr(CRYPTO_TOKEN),
            "cryptobot_api_url": self.cryptopay.url,
            "yookassa_shop_id": YOOKASSA_SHOP_ID,
            "yookassa_secret_key": SecretStr(YOOKASSA_SECRET),
            "yookassa_api_url": self.yookassa.url,
            "database_url": database_url,
            "data_dir": data_dir,
            "web_port": 0,
            "support_url": "https://t.me/spn_support",
            "telegraph_agreement_url": "https://telegra.ph/SPN-agreement",
            "news_channel_username": NEWS_CHANNEL,
            # Scripted users tap far faster than people; the flood guard has its own test.
            "throttle_rate": 100.0,
            "throttle_burst": 100,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    async def start_app(self, settings: Settings, **start_kwargs: Any) -> Application:
        """Start the real app and point the payment emulators' callbacks at it."""
        app = Application(settings)
        try:
            await app.start(**start_kwargs)
            await app.start_up_passes()  # scripted users must not race the start-up reconciler
        except BaseException:
            await app.stop()
            raise
        base = f"http://127.0.0.1:{app.port}"
        self.oneplat.callback_url = base + oneplat.WEBHOOK_PATH
        self.cryptopay.webhook_url = base + cryptobot.WEBHOOK_PATH
        self.yookassa.webhook_url = base + yookassa.WEBHOOK_PATH
        return app
