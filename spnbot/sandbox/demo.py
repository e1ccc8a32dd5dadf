"""``spnbot demo``: the real app against the emulators, playing one customer's journey."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from spnbot.app import Application
from spnbot.config import ConfigError
from spnbot.logs import setup_logging
from spnbot.sandbox.stack import ADMIN_ID, Sandbox
from spnbot.sandbox.telegram import Event
from spnbot.store.models import Payment, User

CUSTOMER = 10_001


class StepFailed(Exception):
    pass


@dataclass
class Journey:
    sandbox: Sandbox
    app: Application
    out: Callable[[str], None]
    timings: list[tuple[str, float, bool]] = field(default_factory=list)

    @property
    def tg(self) -> Any:
        return self.sandbox.telegram

    async def step(self, title: str, action: Callable[[], Awaitable[None]]) -> None:
        self.out(f"\n── {title}")
        started = time.perf_counter()
        try:
            await action()
        except Exception as exc:
            self.timings.append((title, time.perf_counter() - started, False))
            raise StepFailed(f"{title}: {exc}") from exc
        self.timings.append((title, time.perf_counter() - started, True))

    async def tap(self, button: str, expect: str) -> Any:
        return await self.tg.user(CUSTOMER).tap(button, expect)

    async def payment(self, provider: str) -> Payment:
        async with self.app.db.transaction() as session:
            row = (
                (
                    await session.execute(
                        select(Payment)
                        .where(Payment.user_id == CUSTOMER, Payment.provider == provider)
                        .order_by(Payment.id.desc())
                    )
                )
                .scalars()
                .first()
            )
        if row is None or not row.external_id:
            raise StepFailed(f"no {provider} payment recorded")
        return row

    async def expiry(self) -> Any:
        async with self.app.db.transaction() as session:
            user = await session.get(User, CUSTOMER)
        return user.expires_at if user else None


async def _play(j: Journey) -> None:
    tg = j.tg
    user = tg.user(CUSTOMER, first_name="Анна", username="anna_demo", language_code="ru")

    async def start() -> None:
        await user.send("/start")
        await tg.wait_for_message(CUSTOMER, predicate=lambda m: "✅ Принять" in m.button_texts)

    async def accept() -> None:
        await j.tap("✅ Принять", "Главное меню")

    async def tariffs() -> None:
        await j.tap("💳 Оформить подписку", "Выберите тариф")
        await j.tap("1 мес. — 100 ₽", "Выберите способ оплаты")

    async def card() -> None:
        msg = await j.tap("💳 Банковская карта", "Счёт на оплату")
        if "Номер:" not in msg.text or "100 ₽" not in msg.text:
            raise StepFailed("requisites or amount missing from the invoice")
        j.out(f"   pay link: {tg.button_url(CUSTOMER, '💳 Оплатить онлайн')}")

    async def oneplat_pays() -> None:
        payment = await j.payment("oneplat")
        mark = tg.mark(CUSTOMER)
        result = await j.sandbox.oneplat.pay(str(payment.external_id))
        j.out(f"   1Plat callback → SPN answered HTTP {result.status}")
        if result.status != 200:
            raise StepFailed(f"callback answered {result.status}: {result.text}")
        await tg.wait_for_message(CUSTOMER, contains="Оплата прошла успешно", after=mark)
        panel_user = j.sandbox.panel.find_user(telegram_id=CUSTOMER)
        if panel_user is None:
            raise StepFailed("no panel user was created")
        j.out(f"   panel user {panel_user['username']} expires {panel_user['expireAt']}")

    first_end: list[Any] = []

    async def crypto_invoice() -> None:
        first_end.append(await j.expiry())
        await j.tap("🔐 Моя подписка", "активна")
        await j.tap("🔄 Продлить", "Покупка продлит")
        await j.tap("3 мес. — 249 ₽", "Выберите способ оплаты")
        await j.tap("🪙 Криптовалюта (CryptoBot)", "Счёт CryptoBot")

    async def crypto_pays() -> None:
        payment = await j.payment("cryptobot")
        mark = tg.mark(CUSTOMER)
        result = await j.sandbox.cryptopay.pay(int(str(payment.external_id)))
        j.out(f"   Crypto Pay webhook → SPN answered HTTP {result.status}")
        await tg.wait_for_message(CUSTOMER, contains="Оплата прошла успешно", after=mark)
        end = await j.expiry()
        if end != first_end[0] + timedelta(days=90):
            raise StepFailed(f"expected the end to move by 90 days, got {first_end[0]} → {end}")
        j.out(
            f"   subscription extended by 90 days from its previous end: {end:%Y-%m-%d %H:%M} UTC"
        )

    async def stars() -> None:
        await j.tap("🔐 Моя подписка", "активна")
        await j.tap("🔄 Продлить", "Покупка продлит")
        await j.tap("1 мес. — 100 ₽", "Выберите способ оплаты")
        await j.tap("⭐ Telegram Stars", "Telegram Stars")
        mark = tg.mark(CUSTOMER)
        paid = await tg.pay_invoice(CUSTOMER)
        if not paid["ok"]:
            raise StepFailed(f"Stars checkout refused: {paid['error_message']}")
        await tg.wait_for_message(CUSTOMER, contains="Оплата прошла успешно", after=mark)

    await j.step("/start: the bot asks to accept the user agreement", start)
    await j.step("accept the terms: main menu", accept)
    await j.step("buy: tariffs, then 1 month", tariffs)
    await j.step("pay by card through 1Plat: requisites and pay link", card)
    await j.step("1Plat reports the payment: the subscription link arrives", oneplat_pays)
    await j.step("renew for 3 months with CryptoBot: invoice", crypto_invoice)
    await j.step("Crypto Pay reports the payment: subscription extended", crypto_pays)
    await j.step("renew for 1 month in Telegram Stars", stars)


async def run_demo(*, quiet: bool = False) -> int:
    setup_logging("WARNING")

    def out(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spn-demo-") as tmp:
        database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{Path(tmp) / 'demo.sqlite3'}"
        async with Sandbox() as sandbox:
            sandbox.telegram.on_event = lambda event: out(_describe(event))
            settings = sandbox.settings(database_url=database_url, data_dir=Path(tmp))
            try:
                app = await sandbox.start_app(settings)
            except ConfigError as exc:
                print(f"demo could not start the app: {exc}", file=sys.stderr)
                return 1
            journey = Journey(sandbox, app, out)
            try:
                await _play(journey)
                failure = None
            except StepFailed as exc:
                failure = str(exc)
            finally:
                await app.stop()
    _summary(journey.timings, time.perf_counter() - started, failure)
    return 0 if failure is None else 1


def _describe(event: Event) -> str:
    text = " ".join(event.text.split())
    if len(text) > 160:
        text = text[:157] + "…"
    buttons = f"  [{' | '.join(event.buttons)}]" if event.buttons else ""
    if event.who == "user":
        verb = {"press": "presses", "text": "sends", "pay": "pays"}.get(event.kind, event.kind)
        return f"   👤 customer {verb}: {text}"
    to = "admin" if event.user_id == ADMIN_ID else "customer"
    return f"   🤖 bot → {to} ({event.kind}): {text}{buttons}"


def _summary(timings: list[tuple[str, float, bool]], total: float, failure: str | None) -> None:
    print("\nSummary")
    for title, seconds, ok in timings:
        print(f"  {'PASS' if ok else 'FAIL'}  {seconds * 1000:7.0f} ms  {title}")
    passed = sum(1 for *_x, ok in timings if ok)
    print(f"\n{passed}/{len(timings)} steps passed in {total:.1f} s")
    if failure:
        print(f"demo failed at: {failure}", file=sys.stderr)
