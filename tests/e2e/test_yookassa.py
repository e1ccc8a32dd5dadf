"""YooKassa end to end: the running app, POST /yookassa-webhook, the emulator, a real database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import select

from spnbot.domain.states import GrantKind
from spnbot.sandbox.yookassa import NotificationResult
from spnbot.store.models import Grant, Job, Payment, User
from tests.e2e.conftest import Stack

WEBHOOK = "/yookassa-webhook"
UNKNOWN_ID = "2d8d5c1e-000f-5000-8000-1a2b3c4d5e6f"


async def _post(stack: Stack, body: bytes, **headers: str) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{stack.app.port}{WEBHOOK}"
    sent = {"Content-Type": "application/json", **headers}
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=sent) as resp:
        return resp.status, await resp.json()


async def _snapshot(stack: Stack) -> tuple[Any, ...]:
    async with stack.app.db.transaction() as session:
        payments = [
            (p.public_id, p.status, p.paid_at, p.reported_amount_minor)
            for p in (await session.execute(select(Payment))).scalars()
        ]
    return (
        payments,
        await stack.count(Grant),
        await stack.count(Job),
        len(stack.sandbox.panel.requests),
    )


async def _granted_once(stack: Stack, payment: Payment) -> None:
    kind, source = Grant.kind == GrantKind.PAYMENT, Grant.source == payment.public_id
    assert await stack.count(Grant, kind, source) == 1
    assert (await stack.payment(payment.public_id)).status == "paid"
    assert stack.sandbox.panel.find_user(telegram_id=payment.user_id) is not None
    assert stack.success_messages(payment.user_id) == 1, stack.tg.messages(payment.user_id)


async def test_journey_pay_on_yookassas_page(stack: Stack) -> None:
    tg, uid, emulator = stack.tg, 5101, stack.sandbox.yookassa
    user = await stack.customer(uid)
    await stack.tap(user, "💳 Оформить подписку", "Выберите тариф")
    await stack.tap(user, "1 мес. — 100 ₽", "Выберите способ оплаты")
    invoice = await stack.tap(user, "💳 ЮKassa (карта, СБП, ЮMoney)", "Счёт ЮKassa")
    assert "100 ₽" in invoice.text

    payment = await stack.pending_payment_of(uid)
    assert payment.provider == "yookassa" and payment.amount_minor == 10000
    at_yookassa = emulator.payments[payment.external_id]
    assert tg.button_url(uid, "💳 Оплатить") == at_yookassa["confirmation"]["confirmation_url"]
    [body] = emulator.bodies
    assert body["amount"] == {"value": "100.00", "currency": "RUB"}
    assert body["metadata"] == {"order_id": payment.public_id}
    assert body["capture"] is True

    now = datetime.now(UTC)
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)
    mark = tg.mark(uid)
    result = await emulator.pay(payment.external_id)
    assert result == NotificationResult(200, result.text) and "ok" in result.text
    done = await tg.wait_for_message(uid, contains="Оплата прошла успешно", after=mark)
    async with stack.app.db.transaction() as session:
        row = await session.get(User, uid)
    assert row is not None and row.expires_at is not None
    assert timedelta(days=30) <= row.expires_at - before < timedelta(days=30, minutes=1)
    assert row.subscription_url and row.subscription_url in done.text
    settled = await stack.payment(payment.public_id)
    assert (settled.status, settled.paid_via) == ("paid", "webhook")
    assert await stack.reconciler_noop()


async def test_notification_storm_grants_once(stack: Stack) -> None:
    emulator = stack.sandbox.yookassa
    payments = [await stack.pending_payment(7300 + i, "yookassa") for i in range(20)]
    for p in payments:
        await emulator.pay(p.external_id, notify=False)
    results = await asyncio.gather(
        *(emulator.notify(p.external_id) for p in payments for _ in range(30))
    )
    assert {r.status for r in results} == {200}
    await stack.jobs_settled()
    for p in payments:
        await _granted_once(stack, p)
    assert stack.sandbox.panel.creates == len(payments)
    # Once paid, a repeated notification is answered from our own books: YooKassa is not
    # asked again (an unsigned notification must not make us call the API at its sender's rate).
    asked = len(emulator.requests)
    replays = await asyncio.gather(*(emulator.notify(p.external_id) for p in payments * 5))
    assert {r.status for r in replays} == {200}
    assert "already processed" in replays[0].text
    assert len(emulator.requests) == asked


async def test_forged_and_unknown_notifications_grant_nothing(stack: Stack) -> None:
    emulator = stack.sandbox.yookassa
    payment = await stack.pending_payment(8101, "yookassa")
    await stack.jobs_settled()
    before = await _snapshot(stack)

    # The object claims success; the API, asked back, says pending: nothing happens.
    notification = json.loads(emulator.notification(payment.external_id, "payment.succeeded"))
    notification["object"].update(status="succeeded", paid=True)
    status, _ = await _post(stack, json.dumps(notification).encode())
    assert status == 200
    # A payment none of ours is known by: unknown, and YooKassa is not even asked (by id: the
    # reconciler may poll the pending payment meanwhile, which is right).
    notification["object"]["id"] = UNKNOWN_ID
    status, _ = await _post(stack, json.dumps(notification).encode())
    assert status == 404
    notification["object"]["metadata"] = {"order_id": "spn-nobody"}
    assert (await _post(stack, json.dumps(notification).encode()))[0] == 404
    assert not any(UNKNOWN_ID in path for _, path in emulator.requests)
    # Not a notification at all, and events that settle nothing.
    assert (await _post(stack, b'{"type": "notification"}'))[0] == 400
    assert (await _post(stack, b"{not json"))[0] == 400
    assert (await emulator.notify(payment.external_id, "payment.waiting_for_capture")).status == 200
    refund = {
        "type": "notification",
        "event": "refund.succeeded",
        "object": {  # a refund's own id, which is no payment's
            "id": "2f7ec3b2-0015-5000-a000-1a2b3c4d5e6f",
            "payment_id": payment.external_id,
            "status": "succeeded",
            "amount": {"value": "100.00", "currency": "RUB"},
        },
    }
    assert (await _post(stack, json.dumps(refund).encode()))[0] == 200
    assert await _snapshot(stack) == before
    assert await stack.count(Grant) == 0


async def test_canceled_payment_fails_and_tells_the_user(stack: Stack) -> None:
    emulator = stack.sandbox.yookassa
    payment = await stack.pending_payment(8102, "yookassa")
    result = await emulator.cancel(payment.external_id, reason="insufficient_funds")
    assert result.status == 200
    assert (await stack.payment(payment.public_id)).status == "failed"
    await stack.tg.wait_for_message(8102, contains="Платёж не прошёл")
    assert await stack.count(Grant) == 0


async def test_allow_list_behind_the_trusted_proxy(stack: Stack) -> None:
    await stack.restart(yookassa_trusted_ips="default")
    emulator = stack.sandbox.yookassa
    payment = await stack.pending_payment(8103, "yookassa")
    await emulator.pay(payment.external_id, notify=False)
    # From this machine itself (not a YooKassa network): refused, nothing asked or granted.
    assert (await emulator.notify(payment.external_id)).status == 403
    assert (await stack.payment(payment.public_id)).status == "pending"
    # Through the local proxy (TRUSTED_PROXIES), for a YooKassa address: accepted.
    result = await emulator.notify(payment.external_id, X_Forwarded_For="185.71.77.3")
    assert result.status == 200
    await stack.jobs_settled()
    await _granted_once(stack, payment)


async def test_api_down_answers_503_and_the_retry_settles(stack: Stack) -> None:
    emulator = stack.sandbox.yookassa
    payment = await stack.pending_payment(8104, "yookassa")
    await emulator.pay(payment.external_id, notify=False)
    emulator.outage = 503
    assert (await emulator.notify(payment.external_id)).status == 503
    assert (await stack.payment(payment.public_id)).status == "pending"
    emulator.outage = None
    assert (await emulator.notify(payment.external_id)).status == 200
    await stack.jobs_settled()
    await _granted_once(stack, payment)


async def test_reconciler_settles_without_a_notification(stack: Stack) -> None:
    emulator = stack.sandbox.yookassa
    paid = await stack.pending_payment(8105, "yookassa")
    canceled = await stack.pending_payment(8106, "yookassa")
    waiting = await stack.pending_payment(8107, "yookassa")
    await emulator.pay(paid.external_id, notify=False)
    await emulator.cancel(canceled.external_id, notify=False)
    outcomes = await stack.app.reconciler.run_once()
    assert outcomes["confirmed"] == 1 and outcomes["failed"] == 1
    assert (await stack.payment(paid.public_id)).status == "paid"
    assert (await stack.payment(canceled.public_id)).status == "failed"
    assert (await stack.payment(waiting.public_id)).status == "pending"
    await stack.jobs_settled()
    await _granted_once(stack, paid)


async def test_panel_down_then_restart_activates_once(stack: Stack) -> None:
    panel, emulator = stack.sandbox.panel, stack.sandbox.yookassa
    payments = [await stack.pending_payment(9100 + i, "yookassa") for i in range(10)]
    panel.set_failure("503")
    results = await asyncio.gather(*(emulator.pay(p.external_id) for p in payments))
    assert {r.status for r in results} == {200}
    for p in payments:
        await stack.tg.wait_for_message(p.user_id, contains="Оплата получена")
    assert panel.find_user(telegram_id=payments[0].user_id) is None

    await stack.restart()
    panel.set_failure(None)
    await stack.jobs_settled(timeout=60)
    for p in payments:
        await _granted_once(stack, p)
        assert stack.success_messages(p.user_id, "Оплата получена") == 1
    assert panel.creates == 10
