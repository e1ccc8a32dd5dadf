"""Every way a payment can go: Stars, the check button, the reconciler, provider failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from spnbot.domain.states import GrantKind
from spnbot.store.models import Grant, Payment
from tests.e2e.conftest import Stack


async def _open_methods(stack: Stack, user_id: int, tariff: str = "1 мес. — 100 ₽") -> object:
    user = await stack.customer(user_id)
    await stack.tap(user, "💳 Оформить подписку", "Выберите тариф")
    await stack.tap(user, tariff, "Выберите способ оплаты")
    return user


async def test_stars_checkout_delivers_once_per_charge(stack: Stack) -> None:
    tg, uid = stack.tg, 6001
    user = await _open_methods(stack, uid)
    await stack.tap(user, "⭐ Telegram Stars", "Telegram Stars")
    invoice = next(m for m in reversed(tg.messages(uid)) if m.invoice)
    assert invoice.invoice["currency"] == "XTR" and invoice.invoice["total_amount"] == 50
    paid = await tg.pay_invoice(uid)
    assert paid["ok"], paid
    await tg.wait_for_message(uid, contains="Оплата прошла успешно")
    await tg.resend_successful_payment(uid, paid["charge_id"])  # a duplicate delivery
    await tg.resend_successful_payment(uid, paid["charge_id"])
    await stack.jobs_settled()
    assert stack.success_messages(uid) == 1
    assert await stack.count(Grant, Grant.kind == GrantKind.PAYMENT) == 1
    assert await stack.count(Payment, Payment.charge_id == paid["charge_id"]) == 1
    # Paying the same (now settled) invoice again is refused at pre-checkout.
    again = await tg.pay_invoice(uid)
    assert not again["ok"] and "уже оплачен" in again["error_message"]


async def test_check_button_settles_without_a_callback(stack: Stack) -> None:
    tg, uid = stack.tg, 6002
    user = await _open_methods(stack, uid)
    await stack.tap(user, "📱 СБП", "Счёт на оплату")
    query = await user.press("✅ Проверить оплату")
    answer = await tg.wait_for_callback_answer(query)
    assert "пока не поступила" in answer.text
    payment = await stack.pending_payment_of(uid)
    await stack.sandbox.oneplat.pay(payment.external_id, deliver=False)  # the callback is lost
    query = await user.press("✅ Проверить оплату")
    answer = await tg.wait_for_callback_answer(query)
    assert "Оплата получена" in answer.text
    await tg.wait_for_message(uid, contains="Оплата прошла успешно")
    assert (await stack.payment(payment.public_id)).paid_via == "button"


async def test_reconciler_settles_paid_failed_and_expired(stack: Stack) -> None:
    emulator = stack.sandbox.oneplat
    paid = await stack.pending_payment(6003, "oneplat", "card")
    failed = await stack.pending_payment(6004, "oneplat", "card")
    stale = await stack.pending_payment(6005, "oneplat", "card")
    waiting = await stack.pending_payment(6006, "cryptobot")
    await emulator.pay(paid.external_id, deliver=False)
    await emulator.pay(failed.external_id, status=-2, deliver=False)
    async with stack.app.db.transaction() as session:  # older than PAYMENT_TTL
        await session.execute(
            update(Payment)
            .where(Payment.id == stale.id)
            .values(created_at=datetime.now(UTC) - timedelta(days=2))
        )
    outcomes = await stack.app.reconciler.run_once()
    assert outcomes["confirmed"] == 1 and outcomes["failed"] == 1 and outcomes["expired"] == 1
    statuses = {
        p.public_id: (await stack.payment(p.public_id)).status
        for p in (paid, failed, stale, waiting)
    }
    assert statuses == {
        paid.public_id: "paid",
        failed.public_id: "failed",
        stale.public_id: "expired",
        waiting.public_id: "pending",
    }
    await stack.tg.wait_for_message(6003, contains="Оплата прошла успешно")
    await stack.tg.wait_for_message(6004, contains="Платёж не прошёл")
    # A late payment of an expired invoice still counts: the money is real.
    await emulator.pay(stale.external_id, deliver=True)
    assert (await stack.payment(stale.public_id)).status == "paid"
    assert await stack.reconciler_noop()


async def test_provider_failure_is_told_and_recorded(stack: Stack) -> None:
    stack.sandbox.oneplat.no_requisites = True
    uid = 6007
    user = await _open_methods(stack, uid)
    await stack.tap(user, "💳 Банковская карта", "Не удалось создать счёт")
    payment = await stack.pending_payment_of(uid, status="failed")
    assert payment.failure_reason and "реквизиты" in payment.failure_reason


async def test_unconfigured_providers_are_not_offered(stack: Stack) -> None:
    await stack.restart(
        cryptobot_token=None,
        oneplat_shop_id=None,
        oneplat_shop_secret=None,
        yookassa_shop_id=None,
        yookassa_secret_key=None,
    )
    uid = 6008
    await _open_methods(stack, uid)
    buttons = stack.tg.last_message(uid).button_texts
    assert buttons == ["⭐ Telegram Stars", "🔙 Назад"]


async def test_english_speaker_gets_english(stack: Stack) -> None:
    uid = 6009
    user = await stack.customer(uid, language_code="en")
    await stack.tap(user, "💳 Get a subscription", "Choose a plan")
    msg = await stack.tap(user, "1 mo. — 100 ₽", "Choose how to pay")
    assert "Bank card" in " ".join(msg.button_texts)
