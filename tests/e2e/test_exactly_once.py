"""A paid payment turns into days exactly once, however many signals arrive and in what order."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from spnbot.domain.states import GrantKind
from spnbot.store.models import Grant, Payment, User
from tests.e2e.conftest import Stack

USERS = 20
COPIES = 30


async def _assert_granted_once(stack: Stack, payments: list[Payment]) -> None:
    await stack.jobs_settled()
    for p in payments:
        assert (
            await stack.count(Grant, Grant.kind == GrantKind.PAYMENT, Grant.source == p.public_id)
            == 1
        )
        row = await stack.payment(p.public_id)
        assert row.status == "paid"
        async with stack.app.db.transaction() as session:
            user = await session.get(User, p.user_id)
        assert user is not None and user.expires_at is not None
        assert user.expires_at - row.paid_at < timedelta(days=30, seconds=5)
        assert user.expires_at - row.paid_at > timedelta(days=29, hours=23)
        panel_user = stack.sandbox.panel.find_user(telegram_id=p.user_id)
        assert panel_user is not None, p.user_id
        assert stack.success_messages(p.user_id) == 1, stack.tg.messages(p.user_id)
    assert stack.sandbox.panel.creates == len(payments)


async def test_oneplat_callback_storm(stack: Stack) -> None:
    emulator = stack.sandbox.oneplat
    payments = [await stack.pending_payment(7000 + i, "oneplat", "card") for i in range(USERS)]
    bodies = [json.dumps(emulator.build_callback(p.external_id, 1)).encode() for p in payments]
    results = await asyncio.gather(
        *(emulator.send_callback(body) for body in bodies for _ in range(COPIES))
    )
    assert {r.status for r in results} == {200}
    await _assert_granted_once(stack, payments)


async def test_cryptobot_webhook_storm(stack: Stack) -> None:
    emulator = stack.sandbox.cryptopay
    payments = [await stack.pending_payment(7100 + i, "cryptobot") for i in range(USERS)]
    for p in payments:  # the provider's own record says paid; then its webhook arrives 30 times
        invoice = emulator.invoices[int(p.external_id)]
        invoice.update(status="paid", paid_asset="USDT", paid_amount="1.23")
    bodies = [emulator.build_webhook(int(p.external_id)) for p in payments]
    results = await asyncio.gather(
        *(emulator.send_webhook(b, emulator.sign(b)) for b in bodies for _ in range(COPIES))
    )
    assert {r.status for r in results} == {200}
    await _assert_granted_once(stack, payments)


async def test_webhook_races_reconciler_and_check_button(stack: Stack) -> None:
    emulator = stack.sandbox.oneplat
    payments = [await stack.pending_payment(7200 + i, "oneplat", "sbp") for i in range(10)]
    for p in payments:  # paid at 1Plat, callback not delivered yet
        await emulator.pay(p.external_id, deliver=False)

    async def webhook(p: Payment) -> int:
        return (await emulator.send_callback(emulator.build_callback(p.external_id, 1))).status

    async def button(p: Payment) -> object:
        return await stack.app.purchases.check(p.user_id, p.public_id)

    signals = []
    for p in payments:
        signals += [webhook(p), webhook(p), button(p), button(p)]
        signals += [stack.app.reconciler.run_once() for _ in range(2)]
    await asyncio.gather(*signals)
    await _assert_granted_once(stack, payments)
    for p in payments:
        assert (await stack.payment(p.public_id)).paid_via in ("webhook", "button", "reconciler")
