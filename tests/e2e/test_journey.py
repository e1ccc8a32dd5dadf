"""The customer journey from the seed: /start → terms → buy → pay → subscription link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from spnbot.sandbox.stack import Sandbox
from spnbot.store.models import Payment, User
from tests.e2e.conftest import Stack


async def _user_row(stack: Stack, user_id: int) -> User:
    async with stack.app.db.transaction() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def test_oneplat_card_then_cryptobot_extends(stack: Stack) -> None:
    tg, uid = stack.tg, 5001
    user = await stack.customer(uid)

    await stack.tap(user, "💳 Оформить подписку", "Выберите тариф")
    await stack.tap(user, "1 мес. — 100 ₽", "Выберите способ оплаты")
    invoice = await stack.tap(user, "💳 Банковская карта", "Счёт на оплату")
    assert "100 ₽" in invoice.text
    assert "Номер:" in invoice.text  # requisites from 1Plat's note
    assert tg.button_url(uid, "💳 Оплатить онлайн").startswith("https://")

    async with stack.app.db.transaction() as session:
        payment = (
            await session.execute(select(Payment).where(Payment.user_id == uid))
        ).scalar_one()
    assert payment.status == "pending" and payment.amount_minor == 10000

    # Expiries are kept in whole milliseconds (the panel's precision): so is the lower bound.
    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)
    mark = tg.mark(uid)
    result = await stack.sandbox.oneplat.pay(payment.external_id)
    assert result.status == 200, result
    done = await tg.wait_for_message(uid, contains="Оплата прошла успешно", after=mark)
    row = await _user_row(stack, uid)
    assert row.expires_at is not None
    assert timedelta(days=30) <= row.expires_at - before < timedelta(days=30, minutes=1)
    assert row.subscription_url and row.subscription_url in done.text
    panel_user = stack.sandbox.panel.find_user(telegram_id=uid)
    assert panel_user is not None

    # A CryptoBot purchase extends the running subscription from its end, not from today.
    first_end = row.expires_at
    await stack.tap(user, "🔐 Моя подписка", "активна")
    await stack.tap(user, "🔄 Продлить", "Покупка продлит")
    await stack.tap(user, "3 мес. — 249 ₽", "Выберите способ оплаты")
    await stack.tap(user, "🪙 Криптовалюта (CryptoBot)", "Счёт CryptoBot")
    mark = tg.mark(uid)
    async with stack.app.db.transaction() as session:
        crypto = (
            await session.execute(
                select(Payment).where(Payment.user_id == uid, Payment.provider == "cryptobot")
            )
        ).scalar_one()
    result = await stack.sandbox.cryptopay.pay(int(crypto.external_id))
    assert result.status == 200, result
    await tg.wait_for_message(uid, contains="Оплата прошла успешно", after=mark)
    row = await _user_row(stack, uid)
    assert row.expires_at == first_end + timedelta(days=90)
    assert stack.sandbox.panel.creates == 1  # extended, never a second panel user


async def test_panel_2x_purchase_and_renewal(database_url: str, tmp_path) -> None:
    """Operators on Remnawave 2.x (REMNAWAVE_API_VERSION=2) get the same journey."""
    async with Sandbox(panel_version=2) as sandbox:
        settings = sandbox.settings(database_url=database_url, data_dir=tmp_path)
        assert settings.remnawave_api_version == 2
        app = await sandbox.start_app(settings)
        try:
            stack = Stack(sandbox, app, database_url, tmp_path)
            first = await stack.pending_payment(5101, "oneplat", "card")
            await sandbox.oneplat.pay(first.external_id)
            await stack.tg.wait_for_message(5101, contains="Оплата прошла успешно")
            second = await stack.pending_payment(5101, "cryptobot", tariff="3m")
            mark = stack.tg.mark(5101)
            await sandbox.cryptopay.pay(int(second.external_id))
            await stack.tg.wait_for_message(5101, contains="Оплата прошла успешно", after=mark)
            await stack.jobs_settled()
            panel_user = sandbox.panel.find_user(telegram_id=5101)
            row = await _user_row(stack, 5101)
            assert panel_user is not None and sandbox.panel.creates == 1
            assert datetime.fromisoformat(panel_user["expireAt"]) == row.expires_at
            assert row.panel_ref == panel_user["uuid"]
        finally:
            await app.stop()
