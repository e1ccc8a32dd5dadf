"""The emulators themselves, spoken to over raw HTTP: auth, validation, documented shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from spnbot.sandbox.cryptopay import CryptoPayEmulator
from spnbot.sandbox.oneplat import OnePlatEmulator

CREATE = "/api/merchant/order/create/by-api"


async def oneplat_post(
    session: aiohttp.ClientSession, emulator: OnePlatEmulator, body: Any, secret: str | None = None
) -> tuple[int, Any]:
    headers = {
        "x-shop": emulator.shop_id,
        "x-secret": emulator.secret if secret is None else secret,
    }
    async with session.post(emulator.url + CREATE, json=body, headers=headers) as response:
        return response.status, await response.json()


def order(**fields: Any) -> dict[str, Any]:
    return {"merchant_order_id": "o-1", "user_id": 5, "amount": 300, "method": "card", **fields}


async def test_oneplat_auth(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    status, body = await oneplat_post(session, oneplat_emulator, order(), secret="wrong")
    assert status == 401
    assert set(body) == {"error"}


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": "300"},
        {"amount": 300.0},
        {"amount": 0},
        {"amount": 99},
        {"amount": None},
        {"user_id": "5"},
        {"merchant_order_id": ""},
        {"method": "paypal"},
    ],
)
async def test_oneplat_create_validation(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator, fields: dict[str, Any]
) -> None:
    status, body = await oneplat_post(session, oneplat_emulator, order(**fields))
    assert status == 400
    assert isinstance(body["error"], str)
    assert not oneplat_emulator.orders


async def test_oneplat_create_shapes(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator
) -> None:
    status, created = await oneplat_post(session, oneplat_emulator, order())
    assert status == 200
    assert set(created) == {"success", "guid", "payment", "url"}
    assert set(created["payment"]) == {
        "id",
        "status",
        "amount",
        "amount_to_pay",
        "method_group",
        "expired",
        "note",
    }
    assert set(created["payment"]["note"]) == {"pan", "bank", "fio", "currency"}
    assert (await oneplat_post(session, oneplat_emulator, order()))[0] == 400  # duplicate id

    _, draft = await oneplat_post(
        session, oneplat_emulator, order(merchant_order_id="o-2", method=None)
    )
    assert draft["payment"]["status"] == -1
    _, qr = await oneplat_post(
        session, oneplat_emulator, order(merchant_order_id="o-3", method="qr")
    )
    assert set(qr["payment"]["note"]) == {"qr", "qr_img"}
    _, crypto = await oneplat_post(
        session,
        oneplat_emulator,
        order(merchant_order_id="o-4", method="crypto", amount=900, currency="USDT"),
    )
    assert crypto["payment"]["note"]["amount_in_currency"] == "10.00"
    assert {"address", "amount_rub", "course"} <= set(crypto["payment"]["note"])

    headers = {"x-shop": oneplat_emulator.shop_id, "x-secret": oneplat_emulator.secret}
    async with session.get(
        f"{oneplat_emulator.url}/api/merchant/payments/methods/by-api", headers=headers
    ) as response:
        systems = (await response.json())["systems"]
    assert {"system_group": "card", "min": 100, "max": 500000} in systems


async def test_oneplat_callback_controls(oneplat_emulator: OnePlatEmulator) -> None:
    with pytest.raises(KeyError):
        oneplat_emulator.find("nothing")
    with pytest.raises(RuntimeError):
        await oneplat_emulator.send_callback({})


async def cryptopay(
    session: aiohttp.ClientSession,
    emulator: CryptoPayEmulator,
    method: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    token: str | None = None,
) -> tuple[int, Any]:
    headers = {"Crypto-Pay-API-Token": emulator.token if token is None else token}
    verb = "GET" if params is not None else "POST"
    async with session.request(
        verb, f"{emulator.url}/{method}", json=json, params=params, data=data, headers=headers
    ) as response:
        return response.status, await response.json()


def invoice(**fields: Any) -> dict[str, Any]:
    return {"currency_type": "fiat", "fiat": "RUB", "amount": "150", **fields}


async def test_cryptopay_auth_and_unknown_methods(
    session: aiohttp.ClientSession, cryptopay_emulator: CryptoPayEmulator
) -> None:
    assert await cryptopay(session, cryptopay_emulator, "getMe", json={}, token="x") == (
        401,
        {"ok": False, "error": {"code": 401, "name": "UNAUTHORIZED"}},
    )
    status, body = await cryptopay(session, cryptopay_emulator, "transfer", json={})
    assert (status, body["ok"]) == (405, False)
    _, me = await cryptopay(session, cryptopay_emulator, "getMe", params={})
    assert set(me["result"]) == {"app_id", "name", "payment_processing_bot_username"}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"fiat": None}, "FIAT_INVALID"),
        ({"amount": None}, "AMOUNT_INVALID"),
        ({"amount": "abc"}, "AMOUNT_INVALID"),
        ({"amount": "-5"}, "AMOUNT_INVALID"),
        ({"amount": 150.5}, "AMOUNT_INVALID"),
        ({"currency_type": "stocks"}, "CURRENCY_TYPE_INVALID"),
        ({"currency_type": "crypto", "asset": "DOGE"}, "ASSET_INVALID"),
        ({"accepted_assets": "USDT,DOGE"}, "ACCEPTED_ASSETS_INVALID"),
        ({"payload": "x" * 4097}, "PAYLOAD_TOO_LONG"),
        ({"description": "x" * 1025}, "DESCRIPTION_TOO_LONG"),
        ({"expires_in": 0}, "EXPIRES_IN_INVALID"),
        ({"expires_in": 2678401}, "EXPIRES_IN_INVALID"),
        ({"paid_btn_name": "openBot"}, "PAID_BTN_URL_REQUIRED"),
        ({"paid_btn_name": "dance", "paid_btn_url": "https://t.me/x"}, "PAID_BTN_NAME_INVALID"),
    ],
)
async def test_cryptopay_create_validation(
    session: aiohttp.ClientSession,
    cryptopay_emulator: CryptoPayEmulator,
    fields: dict[str, Any],
    error: str,
) -> None:
    body = {k: v for k, v in invoice(**fields).items() if v is not None}
    status, answer = await cryptopay(session, cryptopay_emulator, "createInvoice", json=body)
    assert (status, answer) == (400, {"ok": False, "error": {"code": 400, "name": error}})


async def test_cryptopay_get_query_form_and_filters(
    session: aiohttp.ClientSession, cryptopay_emulator: CryptoPayEmulator
) -> None:
    _, a = await cryptopay(
        session, cryptopay_emulator, "createInvoice", params=invoice(expires_in="60")
    )
    _, b = await cryptopay(session, cryptopay_emulator, "createInvoice", data=invoice(payload="p"))
    first, second = a["result"], b["result"]
    assert first["status"] == "active"
    assert "payload" not in first and second["payload"] == "p"
    assert {
        "invoice_id",
        "hash",
        "bot_invoice_url",
        "mini_app_invoice_url",
        "web_app_invoice_url",
    } <= set(first)

    await cryptopay_emulator.pay(second["invoice_id"], deliver=False)
    with pytest.raises(ValueError):
        await cryptopay_emulator.pay(second["invoice_id"])
    ids = f"{first['invoice_id']},{second['invoice_id']}"
    _, paid = await cryptopay(
        session, cryptopay_emulator, "getInvoices", params={"invoice_ids": ids, "status": "paid"}
    )
    [item] = paid["result"]["items"]
    assert (item["paid_asset"], item["paid_amount"]) == ("USDT", "1.66666667")
    _, page = await cryptopay(
        session, cryptopay_emulator, "getInvoices", json={"offset": 1, "count": 1}
    )
    assert [i["invoice_id"] for i in page["result"]["items"]] == [second["invoice_id"]]
    status, _ = await cryptopay(session, cryptopay_emulator, "getInvoices", json={"count": 1001})
    assert status == 400

    past = datetime.now(UTC) - timedelta(seconds=1)
    cryptopay_emulator.invoices[first["invoice_id"]]["expiration_date"] = past.isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    _, expired = await cryptopay(
        session, cryptopay_emulator, "getInvoices", json={"invoice_ids": ids}
    )
    assert [i["status"] for i in expired["result"]["items"]] == ["expired", "paid"]
