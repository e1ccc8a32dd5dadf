"""Panel down while payments confirm, app restarted, panel back: every payment activates once."""

from __future__ import annotations

import asyncio

from spnbot.domain.states import GrantKind
from spnbot.store.models import Grant
from tests.e2e.conftest import Stack


async def test_outage_and_restart_activate_each_payment_once(stack: Stack) -> None:
    panel, emulator = stack.sandbox.panel, stack.sandbox.oneplat
    payments = [await stack.pending_payment(9000 + i, "oneplat", "card") for i in range(10)]
    panel.set_failure("503")
    results = await asyncio.gather(*(emulator.pay(p.external_id) for p in payments))
    assert {r.status for r in results} == {200}
    for p in payments:  # told that the money arrived and activation is under way
        await stack.tg.wait_for_message(p.user_id, contains="Оплата получена")
    assert panel.find_user(telegram_id=payments[0].user_id) is None

    await stack.restart()  # a fresh process: whatever is owed must come from the database
    panel.set_failure(None)
    await stack.jobs_settled(timeout=60)

    for p in payments:
        assert (
            await stack.count(Grant, Grant.kind == GrantKind.PAYMENT, Grant.source == p.public_id)
            == 1
        )
        assert panel.find_user(telegram_id=p.user_id) is not None
        assert stack.success_messages(p.user_id) == 1
        assert stack.success_messages(p.user_id, "Оплата получена") == 1
    assert panel.creates == 10
