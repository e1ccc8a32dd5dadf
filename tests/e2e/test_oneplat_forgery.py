"""Edited 1Plat callbacks against the running app over HTTP (issue 10, item 2): a final
status only signature_v2 vouches for is asked back from 1Plat before anything is granted, and
only while our payment could still change (a replay or an invented guid costs 1Plat no call)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from sqlalchemy import select

from spnbot.store.models import Grant, Payment
from tests.e2e.conftest import Stack

PATH = "/1plat-webhook"
INFO = "/api/merchant/order/info/"


async def post(stack: Stack, body: dict[str, Any], **headers: str) -> int:
    url = f"http://127.0.0.1:{stack.app.port}{PATH}"
    data = json.dumps(body, ensure_ascii=False).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers={"Content-Type": "application/json", **headers}) as resp,
    ):
        await resp.read()
        return resp.status


def info_calls(stack: Stack) -> int:
    return sum(1 for _, path in stack.sandbox.oneplat.requests if path.startswith(INFO))


def without_hmac(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in body.items() if k != "signature"}, **changes}


async def state(stack: Stack) -> tuple[Any, ...]:
    async with stack.app.db.transaction() as session:
        payments = sorted(
            (p.public_id, p.status, p.paid_at)
            for p in (await session.execute(select(Payment))).scalars()
        )
    return payments, await stack.count(Grant), len(stack.sandbox.panel.requests)


async def test_status_edited_callbacks_grant_nothing(stack: Stack) -> None:
    emulator = stack.sandbox.oneplat
    unpaid = await stack.pending_payment(8101, "oneplat", "card")
    refused = await stack.pending_payment(8102, "oneplat", "sbp")
    await emulator.pay(refused.external_id, status=-2, deliver=False)
    await stack.jobs_settled()
    before = await state(stack)

    genuine = emulator.build_callback(unpaid.external_id, 0)
    assert await post(stack, without_hmac(genuine, status=1)) == 200  # 1Plat says: awaiting
    assert await post(stack, without_hmac(genuine, status=2)) == 200
    assert await state(stack) == before

    genuine = emulator.build_callback(refused.external_id, -2)
    assert await post(stack, without_hmac(genuine, status=1)) == 200  # 1Plat says: failed
    await stack.jobs_settled()
    assert (await stack.payment(refused.public_id)).status == "failed"
    assert (await stack.payment(unpaid.public_id)).status == "pending"
    assert await stack.count(Grant) == 0
    assert stack.sandbox.panel.find_user(telegram_id=8101) is None
    assert stack.sandbox.panel.find_user(telegram_id=8102) is None
    assert stack.success_messages(8101) == stack.success_messages(8102) == 0


async def test_guid_swapped_callbacks_grant_nothing_and_the_real_one_activates(
    stack: Stack,
) -> None:
    emulator = stack.sandbox.oneplat
    ours = await stack.pending_payment(8103, "oneplat", "card")
    theirs = await stack.pending_payment(8104, "oneplat", "card")
    await emulator.pay(theirs.external_id, deliver=False)  # paid at 1Plat, callback lost
    await stack.jobs_settled()
    before = await state(stack)

    genuine = emulator.build_callback(ours.external_id, 0)
    swapped = without_hmac(genuine, status=1, guid=theirs.external_id)
    # Neither names a payment of ours by both ids: unknown, and 1Plat is not even asked. Order
    # info is down meanwhile, so asking would have answered 503 (counting calls would race the
    # reconciler, which may rightly poll these pending orders).
    emulator.info_failure = 502
    assert await post(stack, swapped) == 404
    assert await post(stack, without_hmac(genuine, status=1, guid="no-such-guid")) == 404
    emulator.info_failure = None
    assert not any("no-such-guid" in path for _, path in emulator.requests)
    assert await state(stack) == before

    # The real paid callbacks still activate at once: HMAC-signed, and signature_v2 alone.
    assert (await emulator.pay(ours.external_id)).status == 200
    v2_only = emulator.build_callback(theirs.external_id, 1, signatures=("signature_v2",))
    assert (await emulator.send_callback(v2_only)).status == 200
    await stack.jobs_settled()
    for user_id, payment in ((8103, ours), (8104, theirs)):
        assert (await stack.payment(payment.public_id)).status == "paid"
        await stack.tg.wait_for_message(user_id, contains="Оплата прошла успешно")
        assert stack.success_messages(user_id) == 1
    assert await stack.count(Grant) == 2


async def test_replays_of_a_settled_payment_ask_1plat_nothing(stack: Stack) -> None:
    emulator = stack.sandbox.oneplat
    payment = await stack.pending_payment(8106, "oneplat", "card")
    await emulator.pay(payment.external_id, deliver=False)
    v2_only = emulator.build_callback(payment.external_id, 1, signatures=("signature_v2",))
    assert (await emulator.send_callback(v2_only)).status == 200
    await stack.jobs_settled()
    before, asked = await state(stack), info_calls(stack)
    for body in (v2_only, without_hmac(v2_only, status=-2)):
        for _ in range(10):
            assert await post(stack, body) == 200  # already processed
    assert await post(stack, without_hmac(v2_only, amount=1)) == 403  # v2 covers the amount
    assert info_calls(stack) == asked
    assert await state(stack) == before
    assert stack.success_messages(8106) == 1


async def test_order_info_down_answers_503_and_the_retry_settles(stack: Stack) -> None:
    emulator = stack.sandbox.oneplat
    payment = await stack.pending_payment(8105, "oneplat", "card")
    await emulator.pay(payment.external_id, deliver=False)
    await stack.jobs_settled()
    before = await state(stack)
    v2_only = emulator.build_callback(payment.external_id, 1, signatures=("signature_v2",))
    emulator.info_failure = 502
    assert (await emulator.send_callback(v2_only)).status == 503
    assert await state(stack) == before
    emulator.info_failure = None
    assert (await emulator.send_callback(v2_only)).status == 200  # 1Plat retries
    await stack.jobs_settled()
    assert (await stack.payment(payment.public_id)).status == "paid"


async def test_callback_ips_on_the_running_app(stack: Stack) -> None:
    await stack.restart(oneplat_callback_ips="159.89.25.81", payment_check_interval=3600)
    emulator = stack.sandbox.oneplat
    payment = await stack.pending_payment(8106, "oneplat", "card")
    body = emulator.build_callback(payment.external_id, 1)
    assert (await emulator.send_callback(body)).status == 403  # from 127.0.0.1 itself
    # 127.0.0.1 is a trusted proxy (the default TRUSTED_PROXIES), so its X-Forwarded-For counts.
    assert await post(stack, body, **{"X-Forwarded-For": "10.1.1.1"}) == 403
    assert (await stack.payment(payment.public_id)).status == "pending"
    assert await post(stack, body, **{"X-Forwarded-For": "159.89.25.81"}) == 200
    await stack.jobs_settled()
    assert (await stack.payment(payment.public_id)).status == "paid"
