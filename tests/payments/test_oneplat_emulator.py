"""The 1Plat emulator held to the documented rules, spoken to over raw HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp
import pytest

from spnbot.sandbox.oneplat import OnePlatEmulator

CREATE = "/api/merchant/order/create/by-api"


async def create(
    session: aiohttp.ClientSession, emulator: OnePlatEmulator, **fields: Any
) -> tuple[int, Any]:
    body = {"merchant_order_id": "o-1", "user_id": 5, "amount": 300, "method": "card", **fields}
    headers = {"x-shop": emulator.shop_id, "x-secret": emulator.secret}
    async with session.post(emulator.url + CREATE, json=body, headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("method", "amount", "ok"),
    [
        ("card", 99, False),
        ("card", 100, True),
        ("sbp", 99, False),
        ("sbp", 100, True),
        ("qr", 99, False),
        ("qr", 100, True),
        ("qr", 500_000, True),
        ("qr", 500_001, False),
        ("crypto", 1, True),
        ("crypto", 500_000, True),
        ("crypto", 500_001, False),
    ],
)
async def test_method_limits_follow_the_docs(
    session: aiohttp.ClientSession,
    oneplat_emulator: OnePlatEmulator,
    method: str,
    amount: int,
    ok: bool,
) -> None:
    extra = {"currency": "USDT"} if method == "crypto" else {}
    status, body = await create(session, oneplat_emulator, method=method, amount=amount, **extra)
    assert (status == 200) is ok, body
    assert bool(oneplat_emulator.orders) is ok


@pytest.mark.parametrize("currency", [None, "BTC", 1])
async def test_crypto_needs_usdt(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator, currency: Any
) -> None:
    fields: dict[str, Any] = {"method": "crypto", "amount": 900}
    if currency is not None:
        fields["currency"] = currency
    status, body = await create(session, oneplat_emulator, **fields)
    assert status == 400 and "currency" in body["error"]
    assert not oneplat_emulator.orders


@pytest.mark.parametrize("email", ["", "nobody", "a b@x.ru", 5, ["a@b.ru"]])
async def test_a_bad_email_is_refused(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator, email: Any
) -> None:
    status, _ = await create(session, oneplat_emulator, email=email)
    assert status == 400
    assert not oneplat_emulator.orders


async def test_amount_to_pay_can_be_told_to_differ(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    _, plain = await create(session, oneplat_emulator)
    assert plain["payment"]["amount_to_pay"] == 300
    oneplat_emulator.amount_to_pay_extra = 12
    _, more = await create(session, oneplat_emulator, merchant_order_id="o-2")
    assert (more["payment"]["amount"], more["payment"]["amount_to_pay"]) == (300, 312)
    order = oneplat_emulator.find("o-2")
    assert oneplat_emulator.build_callback("o-2")["amount_to_pay"] == 312
    assert order.as_payment()["amount_to_pay"] == 312


async def test_no_requisites_in_english(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    oneplat_emulator.no_requisites = True
    oneplat_emulator.no_requisites_status = 503
    oneplat_emulator.no_requisites_error = "No suitable cards found"
    assert await create(session, oneplat_emulator) == (503, {"error": "No suitable cards found"})


async def test_callback_hmac_is_the_documented_formula(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    await create(session, oneplat_emulator)
    body = oneplat_emulator.build_callback("o-1", 1, extra={"comment": "оплата"})
    # Written out from the doc's words: HMAC-SHA256(key=shop_secret, msg=JSON.stringify(payload)),
    # payload being what is sent without the two signature fields, in the order sent.
    payload = {k: v for k, v in body.items() if k not in ("signature", "signature_v2")}
    guid, expired = body["guid"], body["expired"]
    message = (
        f'{{"payment_id":"1001","guid":"{guid}","merchant_id":"o-1","user_id":"5",'
        '"status":1,"amount":300,"amount_to_pay":300,"amount_to_shop":285,'
        f'"expired":"{expired}","comment":"оплата"}}'
    )
    assert json.dumps(payload, separators=(",", ":"), ensure_ascii=False) == message
    secret = oneplat_emulator.secret.encode()
    assert body["signature"] == hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()
    v2 = f"o-1300{oneplat_emulator.shop_id}{oneplat_emulator.secret}".encode()
    assert body["signature_v2"] == hashlib.md5(v2, usedforsecurity=False).hexdigest()
