"""The Crypto Pay emulator's getInvoices and paid invoices, checked with an independent client.

cryptobot-python (not written for SPN) sends its own requests; its Invoice dataclass lists the
fields of the documented Invoice object, so the emulator may return no field outside it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import httpx
import pytest
from cryptobot import AsyncCryptoBotClient
from cryptobot.models import Asset, Invoice, Status

from spnbot.sandbox.cryptopay import CryptoPayEmulator

INVOICE_FIELDS = {f.name for f in dataclasses.fields(Invoice)}


@pytest.fixture
async def client(cryptopay_emulator: CryptoPayEmulator) -> AsyncIterator[AsyncCryptoBotClient]:
    crypto = AsyncCryptoBotClient(cryptopay_emulator.token, is_mainnet=False)
    await crypto.close()
    # The client has no base-URL option: swap its transport for one aimed at the emulator.
    crypto._http_client = httpx.AsyncClient(
        base_url=cryptopay_emulator.url,
        headers={"Crypto-Pay-API-Token": cryptopay_emulator.token},
    )
    yield crypto
    await crypto.close()


async def get_invoices(
    session: aiohttp.ClientSession, emulator: CryptoPayEmulator, how: str, params: dict[str, Any]
) -> tuple[int, Any]:
    """getInvoices with parameters as a JSON body, a form body or a query string."""
    headers = {"Crypto-Pay-API-Token": emulator.token}
    url = f"{emulator.url}/getInvoices"
    if how == "json":
        request = session.post(url, json=params, headers=headers)
    elif how == "form":
        request = session.post(url, data={k: str(v) for k, v in params.items()}, headers=headers)
    else:
        request = session.get(url, params={k: str(v) for k, v in params.items()}, headers=headers)
    async with request as response:
        return response.status, await response.json()


async def test_independent_client_creates_pays_and_filters(
    client: AsyncCryptoBotClient, cryptopay_emulator: CryptoPayEmulator
) -> None:
    fiat = await client.create_invoice(
        150, currency_type="fiat", fiat="RUB", accepted_assets="USDT,TON", payload="order-1"
    )
    crypto = await client.create_invoice(2, asset=Asset.TON, hidden_message="thanks")
    assert (fiat.status, crypto.status) == (Status.active, Status.active)
    await cryptopay_emulator.pay(fiat.invoice_id, asset="USDT", deliver=False, anonymously=True)
    await cryptopay_emulator.pay(crypto.invoice_id, deliver=False, comment="hi")

    [paid] = await client.get_invoices(status=Status.paid, asset=None, fiat="RUB")
    assert paid.invoice_id == fiat.invoice_id and paid.paid_asset == Asset.USDT
    assert (paid.paid_amount, paid.paid_fiat_rate, paid.paid_usd_rate) == ("1.66666667", "90", "1")
    assert (paid.fee_asset, paid.fee_amount, paid.paid_anonymously) == (Asset.USDT, "0.05", True)
    [ton] = await client.get_invoices(asset=Asset.TON)
    assert ton.invoice_id == crypto.invoice_id
    assert (ton.paid_asset, ton.paid_amount, ton.comment) == (Asset.TON, "2", "hi")
    assert Decimal(ton.fee_amount or "") == Decimal("0.06")
    assert ton.paid_anonymously is False and ton.hidden_message == "thanks"
    both = await client.get_invoices(invoice_ids=[fiat.invoice_id, crypto.invoice_id], count=1)
    assert [i.invoice_id for i in both] == [fiat.invoice_id]

    for invoice in cryptopay_emulator.invoices.values():
        assert set(invoice) <= INVOICE_FIELDS, set(invoice) - INVOICE_FIELDS


@pytest.mark.parametrize("how", ["json", "form", "query"])
async def test_get_invoices_filters_in_every_encoding(
    session: aiohttp.ClientSession, cryptopay_emulator: CryptoPayEmulator, how: str
) -> None:
    make = cryptopay_emulator._create_invoice
    rub = make({"currency_type": "fiat", "fiat": "RUB", "amount": "100"})["invoice_id"]
    usd = make({"currency_type": "fiat", "fiat": "USD", "amount": "5"})["invoice_id"]
    ton = make({"asset": "TON", "amount": "1"})["invoice_id"]
    btc = make({"asset": "BTC", "amount": "0.001"})["invoice_id"]
    await cryptopay_emulator.pay(rub, deliver=False)

    async def ids(**params: Any) -> list[int]:
        status, body = await get_invoices(session, cryptopay_emulator, how, params)
        assert status == 200, body
        return [i["invoice_id"] for i in body["result"]["items"]]

    assert await ids() == [rub, usd, ton, btc]
    assert await ids(fiat="USD") == [usd]
    assert await ids(asset="BTC") == [btc]
    assert await ids(status="paid") == [rub]
    assert await ids(status="active", fiat="RUB") == []
    assert await ids(invoice_ids=f"{btc},{rub}") == [rub, btc]
    assert await ids(offset=1, count=2) == [usd, ton]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"asset": "DOGE"}, "ASSET_INVALID"),
        ({"fiat": "XYZ"}, "FIAT_INVALID"),
        ({"status": "refunded"}, "STATUS_INVALID"),
        ({"invoice_ids": "1,x"}, "INVOICE_IDS_INVALID"),
        ({"offset": -1}, "OFFSET_INVALID"),
        ({"count": 0}, "COUNT_INVALID"),
    ],
)
async def test_get_invoices_refuses_bad_filters(
    session: aiohttp.ClientSession,
    cryptopay_emulator: CryptoPayEmulator,
    params: dict[str, Any],
    error: str,
) -> None:
    status, body = await get_invoices(session, cryptopay_emulator, "json", params)
    assert (status, body) == (400, {"ok": False, "error": {"code": 400, "name": error}})


async def test_payment_rules_of_the_invoice_hold(cryptopay_emulator: CryptoPayEmulator) -> None:
    make = cryptopay_emulator._create_invoice
    strict = make(
        {
            "currency_type": "fiat",
            "fiat": "RUB",
            "amount": "100",
            "accepted_assets": "TON",
            "allow_anonymous": False,
            "allow_comments": False,
        }
    )["invoice_id"]
    with pytest.raises(ValueError, match="anonymous"):
        await cryptopay_emulator.pay(strict, asset="TON", deliver=False, anonymously=True)
    with pytest.raises(ValueError, match="comments"):
        await cryptopay_emulator.pay(strict, asset="TON", deliver=False, comment="x")
    with pytest.raises(ValueError, match="does not accept USDT"):
        await cryptopay_emulator.pay(strict, asset="USDT", deliver=False)
    assert cryptopay_emulator.invoices[strict]["status"] == "active"
