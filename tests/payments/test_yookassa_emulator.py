"""The YooKassa emulator is as strict as the API: raw HTTP, no client of ours in between."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from spnbot.sandbox.yookassa import YooKassaEmulator
from tests.payments.conftest import YOOKASSA_KEY, YOOKASSA_SHOP, yookassa_auth


def good_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": {"value": "150.00", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": "https://t.me/spn_bot"},
        "description": "SPN, 30 days",
        "metadata": {"order_id": "ord-1"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def post(
    session: aiohttp.ClientSession,
    emulator: YooKassaEmulator,
    body: dict[str, Any] | bytes,
    *,
    key: str | None = "key-1",
    auth: str | None = None,
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": auth or yookassa_auth(), "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotence-Key"] = key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(emulator.url + "/payments", data=data, headers=headers) as response:
        return response.status, await response.json()


async def get(
    session: aiohttp.ClientSession, emulator: YooKassaEmulator, payment_id: str
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": yookassa_auth()}
    async with session.get(f"{emulator.url}/payments/{payment_id}", headers=headers) as response:
        return response.status, await response.json()


def assert_error(status: int, data: dict[str, Any], http_status: int, code: str) -> None:
    assert status == http_status, data
    assert data["type"] == "error" and data["code"] == code
    assert isinstance(data["id"], str) and isinstance(data["description"], str)


# Authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        yookassa_auth(secret_key="test_wrong"),
        yookassa_auth(shop_id="1"),
        "Basic !!!not-base64",
        f"Bearer {YOOKASSA_KEY}",
        "Basic",
    ],
    ids=["wrong-key", "wrong-shop", "bad-base64", "bearer", "empty"],
)
async def test_bad_credentials_are_401(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator, auth: str
) -> None:
    status, data = await post(session, yookassa_emulator, good_body(), auth=auth)
    assert_error(status, data, 401, "invalid_credentials")
    assert yookassa_emulator.payments == {}
    async with session.get(
        f"{yookassa_emulator.url}/payments/{uuid.uuid4()}", headers={"Authorization": auth}
    ) as response:
        assert response.status == 401


async def test_no_credentials_are_401(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    async with session.post(yookassa_emulator.url + "/payments", json=good_body()) as response:
        assert_error(response.status, await response.json(), 401, "invalid_credentials")


# Idempotence ------------------------------------------------------------------------------


async def test_idempotence_key_is_required_and_bounded(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    for key in (None, "", "k" * 65):
        status, data = await post(session, yookassa_emulator, good_body(), key=key)
        assert_error(status, data, 400, "invalid_request")
        assert data["parameter"] == "Idempotence-Key"
    status, _ = await post(session, yookassa_emulator, good_body(), key="k" * 64)
    assert status == 200


async def test_same_key_same_body_is_the_same_payment(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    _, first = await post(session, yookassa_emulator, good_body())
    reordered = dict(reversed(list(good_body().items())))  # same data, other bytes
    _, again = await post(session, yookassa_emulator, reordered)
    assert again == first
    _, other = await post(session, yookassa_emulator, good_body(), key="key-2")
    assert other["id"] != first["id"]
    assert len(yookassa_emulator.payments) == 2


async def test_same_key_other_body_is_refused(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    await post(session, yookassa_emulator, good_body())
    changed = good_body(amount={"value": "1.00", "currency": "RUB"})
    status, data = await post(session, yookassa_emulator, changed)
    assert_error(status, data, 400, "invalid_request")
    assert data["description"] == "Idempotence key duplicated"
    assert len(yookassa_emulator.payments) == 1


async def test_a_refused_request_does_not_use_up_its_key(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    status, _ = await post(session, yookassa_emulator, good_body(description="x" * 129))
    assert status == 400
    status, _ = await post(session, yookassa_emulator, good_body())
    assert status == 200


# Validation -------------------------------------------------------------------------------


BAD_BODIES: list[tuple[str, dict[str, Any] | bytes, str]] = [
    ("no-amount", good_body(amount=None), "amount"),
    ("whole", good_body(amount={"value": "150", "currency": "RUB"}), "amount.value"),
    ("one-decimal", good_body(amount={"value": "150.0", "currency": "RUB"}), "amount.value"),
    ("three-decimals", good_body(amount={"value": "1.001", "currency": "RUB"}), "amount.value"),
    ("comma", good_body(amount={"value": "150,00", "currency": "RUB"}), "amount.value"),
    ("exponent", good_body(amount={"value": "1e2", "currency": "RUB"}), "amount.value"),
    ("negative", good_body(amount={"value": "-1.00", "currency": "RUB"}), "amount.value"),
    ("zero", good_body(amount={"value": "0.00", "currency": "RUB"}), "amount.value"),
    ("number", b'{"amount": {"value": 150.00, "currency": "RUB"}}', ""),
    ("usd", good_body(amount={"value": "150.00", "currency": "USD"}), "amount.currency"),
    ("capture-text", good_body(capture="true"), "capture"),
    ("no-confirmation", good_body(confirmation=None), "confirmation.type"),
    ("embedded", good_body(confirmation={"type": "embedded"}), "confirmation.type"),
    (
        "bad-return",
        good_body(confirmation={"type": "redirect", "return_url": "tg://x"}),
        "confirmation.return_url",
    ),
    ("long-description", good_body(description="д" * 129), "description"),
    ("metadata-number", good_body(metadata={"order_id": 1}), "metadata.order_id"),
    ("metadata-keys", good_body(metadata={f"k{i}": "v" for i in range(17)}), "metadata"),
    ("metadata-long-key", good_body(metadata={"k" * 33: "v"}), "metadata." + "k" * 32),
    ("metadata-long-value", good_body(metadata={"k": "v" * 513}), "metadata.k"),
    ("not-json", b"{", ""),
    ("array", b"[]", ""),
]


@pytest.mark.parametrize(
    ("body", "parameter"), [(b, p) for _, b, p in BAD_BODIES], ids=[i for i, _, _ in BAD_BODIES]
)
async def test_bad_requests_are_400_and_create_nothing(
    session: aiohttp.ClientSession,
    yookassa_emulator: YooKassaEmulator,
    body: dict[str, Any] | bytes,
    parameter: str,
) -> None:
    status, data = await post(session, yookassa_emulator, body)
    assert_error(status, data, 400, "invalid_request")
    assert data.get("parameter", "") == parameter
    assert yookassa_emulator.payments == {}


def receipt(**item_changes: Any) -> dict[str, Any]:
    item = {
        "description": "SPN, 30 days",
        "quantity": 1,
        "amount": {"value": "150.00", "currency": "RUB"},
        "vat_code": 1,
        "payment_subject": "service",
        "payment_mode": "full_payment",
    }
    item.update(item_changes)
    return {"customer": {"email": "tg1@example.com"}, "items": [item]}


@pytest.mark.parametrize(
    ("bad_receipt", "parameter"),
    [
        (receipt(amount={"value": "100.00", "currency": "RUB"}), "receipt.items"),
        (receipt(quantity=2), "receipt.items"),  # 2 × 150 is not 150
        (receipt(vat_code=0), "receipt.items[0].vat_code"),
        (receipt(vat_code=13), "receipt.items[0].vat_code"),
        (receipt(quantity=0), "receipt.items[0].quantity"),
        (receipt(description=""), "receipt.items[0].description"),
        ({"customer": {"email": "nobody"}, "items": receipt()["items"]}, "receipt.customer"),
        ({"customer": {"email": "a@b.ru"}, "items": []}, "receipt.items"),
    ],
)
async def test_bad_receipts_are_400(
    session: aiohttp.ClientSession,
    yookassa_emulator: YooKassaEmulator,
    bad_receipt: dict[str, Any],
    parameter: str,
) -> None:
    status, data = await post(session, yookassa_emulator, good_body(receipt=bad_receipt))
    assert_error(status, data, 400, "invalid_request")
    assert data["parameter"] == parameter


async def test_receipts_required_by_the_shop(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    yookassa_emulator.receipts_required = True
    status, data = await post(session, yookassa_emulator, good_body())
    assert_error(status, data, 400, "invalid_request")
    status, _ = await post(session, yookassa_emulator, good_body(receipt=receipt()), key="k2")
    assert status == 200


# Payment objects and their life ---------------------------------------------------------------


async def test_payment_object_through_its_life(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    _, created = await post(session, yookassa_emulator, good_body())
    payment_id = created["id"]
    assert len(payment_id) == 36
    assert (created["status"], created["paid"], created["test"]) == ("pending", False, True)
    assert created["amount"] == {"value": "150.00", "currency": "RUB"}
    assert created["confirmation"]["type"] == "redirect"
    assert created["confirmation"]["confirmation_url"].startswith("https://")
    assert created["metadata"] == {"order_id": "ord-1"}
    assert created["created_at"].endswith("Z") and created["refundable"] is False
    assert "captured_at" not in created and "income_amount" not in created

    await yookassa_emulator.pay(payment_id, notify=False)
    status, paid = await get(session, yookassa_emulator, payment_id)
    assert status == 200
    assert (paid["status"], paid["paid"], paid["refundable"]) == ("succeeded", True, True)
    assert paid["captured_at"] >= paid["created_at"]
    assert paid["income_amount"] == {"value": "144.75", "currency": "RUB"}  # 3.5% fee
    with pytest.raises(ValueError, match="succeeded"):
        await yookassa_emulator.cancel(payment_id)


async def test_cancel_and_capture_false(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    _, first = await post(session, yookassa_emulator, good_body())
    await yookassa_emulator.cancel(first["id"], reason="card_expired", party="payment_network")
    _, canceled = await get(session, yookassa_emulator, first["id"])
    assert canceled["status"] == "canceled" and canceled["paid"] is False
    assert canceled["cancellation_details"] == {
        "party": "payment_network",
        "reason": "card_expired",
    }

    _, held = await post(session, yookassa_emulator, good_body(capture=False), key="k2")
    await yookassa_emulator.pay(held["id"], notify=False)
    _, waiting = await get(session, yookassa_emulator, held["id"])
    assert (waiting["status"], waiting["paid"]) == ("waiting_for_capture", True)
    assert "expires_at" in waiting


async def test_unknown_payment_and_path_are_404(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    status, data = await get(session, yookassa_emulator, str(uuid.uuid4()))
    assert_error(status, data, 404, "not_found")
    async with session.get(
        yookassa_emulator.url + "/refunds", headers={"Authorization": yookassa_auth()}
    ) as response:
        assert_error(response.status, await response.json(), 404, "not_found")


async def test_outage_fails_every_call(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    _, created = await post(session, yookassa_emulator, good_body())
    yookassa_emulator.outage = 503
    status, data = await post(session, yookassa_emulator, good_body(), key="k2")
    assert_error(status, data, 503, "internal_server_error")
    status, _ = await get(session, yookassa_emulator, created["id"])
    assert status == 503
    assert len(yookassa_emulator.payments) == 1


# Notifications ------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", seen
    finally:
        await runner.cleanup()


async def test_notifications_are_unsigned_and_carry_the_payment(
    session: aiohttp.ClientSession,
    yookassa_emulator: YooKassaEmulator,
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    yookassa_emulator.webhook_url, seen = receiver
    _, created = await post(session, yookassa_emulator, good_body())
    result = await yookassa_emulator.pay(created["id"])
    assert result.status == 200
    await yookassa_emulator.notify(created["id"], "refund.succeeded", X_Forwarded_For="185.71.76.7")
    [(headers, body), (refund_headers, refund_body)] = seen
    notification = json.loads(body)
    assert (notification["type"], notification["event"]) == ("notification", "payment.succeeded")
    assert notification["object"]["id"] == created["id"]
    assert notification["object"]["status"] == "succeeded"
    assert not {h.lower() for h in headers} & {"authorization", "signature", "x-signature"}
    assert refund_headers["X-Forwarded-For"] == "185.71.76.7"
    assert json.loads(refund_body)["event"] == "refund.succeeded"
    assert YOOKASSA_SHOP not in headers.values()
