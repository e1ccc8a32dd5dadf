"""``spnbot sandbox``: the emulators on their own, for pointing a real deployment at them."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from spnbot.sandbox import stack
from spnbot.sandbox.stack import Sandbox


async def serve_sandbox(*, token: str | None = None) -> int:
    sandbox = Sandbox(bot_token=token) if token else Sandbox()
    async with sandbox:
        print("SPN sandbox is running. Put these in .env to use it:\n")
        print(f"BOT_TOKEN={sandbox.bot_token}")
        print(f"TELEGRAM_API_URL={sandbox.telegram.url}")
        print(f"REMNAWAVE_BASE_URL={sandbox.panel.url}")
        print(f"REMNAWAVE_API_TOKEN={stack.PANEL_TOKEN}")
        print(f"DEFAULT_SQUAD_UUID={sandbox.panel.squad_uuid}")
        print(f"ONEPLAT_BASE_URL={sandbox.oneplat.url}")
        print(f"ONEPLAT_SHOP_ID={stack.SHOP_ID}")
        print(f"ONEPLAT_SHOP_SECRET={stack.SHOP_SECRET}")
        print(f"CRYPTOBOT_API_URL={sandbox.cryptopay.url}")
        print(f"CRYPTOBOT_TOKEN={stack.CRYPTO_TOKEN}")
        print(f"YOOKASSA_API_URL={sandbox.yookassa.url}")
        print(f"YOOKASSA_SHOP_ID={stack.YOOKASSA_SHOP_ID}")
        print(f"YOOKASSA_SECRET_KEY={stack.YOOKASSA_SECRET}")
        print("\nPayment callbacks go to http://127.0.0.1:8080 (the app's default WEB_PORT).")
        print("Press Ctrl+C to stop.", flush=True)
        sandbox.oneplat.callback_url = "http://127.0.0.1:8080/1plat-webhook"
        sandbox.cryptopay.webhook_url = "http://127.0.0.1:8080/cryptobot-webhook"
        sandbox.yookassa.webhook_url = "http://127.0.0.1:8080/yookassa-webhook"
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    return 0
