"""Bad payment callbacks get the right HTTP code and change nothing in the database or panel."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from spnbot.store.models import Grant, Job, Payment
from tests.e2e.conftest import Stack


async def _post(stack: Stack, path: str, body: bytes, content_type: str, **headers: str) -> int:
    url = f"http://127.0.0.1:{stack.app.port}{path}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={"Content-Type": content_type, **headers}) as resp,
    ):
        await resp.read()
        return resp.status


async def _snapshot(stack: Stack) -> tuple[Any, ...]:
    async with stack.app.db.transaction() as session:
        from sqlalchemy import select

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


def _forge(body: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**body, **changes}).encode()


ONEPLAT_CASES = {
    "forged signatures": (
        403,
        lambda good, emu, p: _forge(good, signature="0" * 64, signature_v2="0" * 32),
    ),
    "no signature": (
        403,
        lambda good, emu, p: _forge(
            {k: v for k, v in good.items() if not k.startswith("signature")}
        ),
    ),
    "another shop": (
        403,
        lambda good, emu, p: json.dumps(
            emu.build_callback(p.external_id, 1, shop_id="999", secret="other-secret")
        ).encode(),
    ),
    "replay with changed amount": (403, lambda good, emu, p: _forge(good, amount=1)),
    "unknown guid": (
        404,
        lambda good, emu, p: json.dumps(
            emu.build_callback(p.external_id, 1, extra={"guid": "nope", "merchant_id": "spn-nope"})
        ).encode(),
    ),
    "malformed json": (400, lambda good, emu, p: b'{"guid": "x", '),
    "missing fields": (400, lambda good, emu, p: _forge({"signature": good["signature"]})),
    "oversized body": (413, lambda good, emu, p: _forge(good, pad="x" * 70_000)),
}


@pytest.mark.parametrize("case", sorted(ONEPLAT_CASES))
async def test_oneplat_refuses(stack: Stack, case: str) -> None:
    emulator = stack.sandbox.oneplat
    payment = await stack.pending_payment(8000, "oneplat", "card")
    await stack.jobs_settled()
    good = emulator.build_callback(payment.external_id, 1)
    expected, make = ONEPLAT_CASES[case]
    before = await _snapshot(stack)
    status = await _post(stack, "/1plat-webhook", make(good, emulator, payment), "application/json")
    assert status == expected
    assert await _snapshot(stack) == before
    # The genuine callback still works afterwards: a refusal never poisons the payment.
    assert (await emulator.send_callback(good)).status == 200


async def test_oneplat_non_json_content_type(stack: Stack) -> None:
    payment = await stack.pending_payment(8001, "oneplat", "card")
    await stack.jobs_settled()
    body = json.dumps(stack.sandbox.oneplat.build_callback(payment.external_id, 1)).encode()
    before = await _snapshot(stack)
    assert await _post(stack, "/1plat-webhook", body, "text/plain") == 400
    assert await _snapshot(stack) == before


async def test_validly_signed_wrong_amount_is_flagged_not_granted(stack: Stack) -> None:
    emulator = stack.sandbox.oneplat
    payment = await stack.pending_payment(8002, "oneplat", "card")
    forged = emulator.build_callback(payment.external_id, 1, amount=1)  # signed with our secret
    assert (await emulator.send_callback(forged)).status == 400
    row = await stack.payment(payment.public_id)
    assert row.status == "mismatch" and row.reported_amount_minor == 100
    assert await stack.count(Grant) == 0
    await stack.jobs_settled()
    admin_texts = [m.text for m in stack.tg.messages(900000001)]
    assert any("Сумма не совпала" in t for t in admin_texts), admin_texts
    assert stack.sandbox.panel.find_user(telegram_id=8002) is None


async def test_non_final_statuses_change_nothing_and_failed_tells_user(stack: Stack) -> None:
    emulator = stack.sandbox.oneplat
    payment = await stack.pending_payment(8003, "oneplat", "card")
    await stack.jobs_settled()
    before = await _snapshot(stack)
    for status in (0, -1):
        assert (
            await emulator.send_callback(emulator.build_callback(payment.external_id, status))
        ).status == 200
    assert await _snapshot(stack) == before
    assert (
        await emulator.send_callback(emulator.build_callback(payment.external_id, -2))
    ).status == 200
    assert (await stack.payment(payment.public_id)).status == "failed"
    await stack.tg.wait_for_message(8003, contains="Платёж не прошёл")
    assert await stack.count(Grant) == 0


async def test_cryptobot_refuses_bad_signatures(stack: Stack) -> None:
    emulator = stack.sandbox.cryptopay
    payment = await stack.pending_payment(8004, "cryptobot")
    await stack.jobs_settled()
    body = emulator.build_webhook(int(payment.external_id))
    before = await _snapshot(stack)
    assert (await emulator.send_webhook(body, None)).status == 403
    assert (await emulator.send_webhook(body, "ab" * 32)).status == 403
    assert (
        await emulator.send_webhook(body.replace(b'"', b'"', 1) + b" ", emulator.sign(body))
    ).status == 403
    assert (await emulator.send_webhook(body, emulator.sign(body, token="1:other"))).status == 403
    assert await _snapshot(stack) == before
    assert (await emulator.send_webhook(body, emulator.sign(body))).status == 200
    await stack.jobs_settled()
    assert (await stack.payment(payment.public_id)).status == "paid"
