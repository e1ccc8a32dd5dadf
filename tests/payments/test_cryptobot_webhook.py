"""Crypto Pay webhooks: verified over the raw bytes, never over re-serialised JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from spnbot.domain.money import Money
from spnbot.payments import safe_json
from spnbot.payments.base import (
    InvoiceRequest,
    ProviderStatus,
    WebhookAck,
    WebhookRejected,
)
from spnbot.payments.cryptobot import CryptoBotProvider
from spnbot.sandbox.cryptopay import CryptoPayEmulator
from tests.payments.conftest import WebhookVerifier

Start = Callable[[WebhookVerifier], Awaitable[Any]]


@pytest.fixture
async def invoice_id(cryptobot: CryptoBotProvider) -> str:
    invoice = await cryptobot.create_invoice(InvoiceRequest("ord-5", 1, Money.rub(150), "SPN"))
    return invoice.external_id


def rejected(provider: CryptoBotProvider, body: bytes, headers: dict[str, str]) -> int:
    with pytest.raises(WebhookRejected) as caught:
        provider.parse_webhook(headers, body)
    return caught.value.http_status


async def test_paid_invoice(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator, invoice_id: str
) -> None:
    await cryptopay_emulator.pay(invoice_id, deliver=False)
    body = cryptopay_emulator.build_webhook(invoice_id)
    for name in ("crypto-pay-api-signature", "Crypto-Pay-Api-Signature"):
        report = cryptobot.parse_webhook({name: cryptopay_emulator.sign(body)}, body)
        assert report.external_id == invoice_id
        assert report.order_id == "ord-5"
        assert report.status is ProviderStatus.PAID
        assert report.amount == Money.rub(150)


async def test_any_formatting_verifies_when_signed_as_sent(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator, invoice_id: str
) -> None:
    await cryptopay_emulator.pay(invoice_id, deliver=False)
    body = cryptopay_emulator.build_webhook(invoice_id, indent=2)
    sig = cryptopay_emulator.sign(body)
    assert (
        cryptobot.parse_webhook({"crypto-pay-api-signature": sig}, body).status
        is ProviderStatus.PAID
    )


async def test_refused_signatures(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator, invoice_id: str
) -> None:
    await cryptopay_emulator.pay(invoice_id, deliver=False)
    body = cryptopay_emulator.build_webhook(invoice_id)
    good = cryptopay_emulator.sign(body)
    header = "crypto-pay-api-signature"
    assert rejected(cryptobot, body, {}) == 403
    assert rejected(cryptobot, body, {header: ""}) == 403
    assert (
        rejected(cryptobot, body, {header: cryptopay_emulator.sign(body, token="4242:other")})
        == 403
    )
    assert rejected(cryptobot, body, {"x-signature": good}) == 403
    one_byte = body.replace(b'"amount":"150"', b'"amount":"151"')
    assert one_byte != body
    assert rejected(cryptobot, one_byte, {header: good}) == 403
    # Same JSON value, other bytes: the signature was over the original bytes, so it fails.
    respaced = json.dumps(json.loads(body), indent=1).encode()
    assert json.loads(respaced) == json.loads(body)
    assert rejected(cryptobot, respaced, {header: good}) == 403


@pytest.mark.parametrize(
    "raw",
    [
        b"{broken",
        b"[]",
        b'{"update_type":"invoice_paid"}',
        b'{"update_type":"invoice_paid","payload":{"amount":"150","fiat":"RUB"}}',
        b'{"update_type":"invoice_paid","payload":{"invoice_id":1,"fiat":"RUB"}}',
        b'{"update_type":"invoice_paid","payload":{"invoice_id":1,"amount":"1.5e","fiat":"RUB"}}',
        b'{"update_type":"invoice_paid","payload":{"invoice_id":1,"amount":150.5,"fiat":"RUB"}}',
    ],
)
def test_signed_but_malformed(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator, raw: bytes
) -> None:
    assert (
        rejected(cryptobot, raw, {"crypto-pay-api-signature": cryptopay_emulator.sign(raw)}) == 400
    )


async def test_other_update_types_are_acknowledged(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator, invoice_id: str
) -> None:
    """A signed update we do not use settles nothing and is answered 200 (a 4xx would make
    Crypto Pay retry it for three days)."""
    body = cryptopay_emulator.build_webhook(invoice_id, update_type="invoice_expired")
    result = cryptobot.parse_webhook(
        {"crypto-pay-api-signature": cryptopay_emulator.sign(body)}, body
    )
    assert isinstance(result, WebhookAck) and "invoice_expired" in result.reason
    for raw in (b'{"update_type":7}', b'{"payload":{"invoice_id":1}}', b'{"update_type":null}'):
        signed = {"crypto-pay-api-signature": cryptopay_emulator.sign(raw)}
        assert isinstance(cryptobot.parse_webhook(signed, raw), WebhookAck)
    # Unsigned, the same body is refused before anything in it is read.
    assert rejected(cryptobot, body, {}) == 403


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 30000,
        b'{"a":' * 900 + b"1" + b"}" * 900,
        b'{"update_type":"invoice_paid","payload":{"invoice_id":1,"amount":"1e999999999",'
        b'"fiat":"RUB"}}',
        b'{"update_type":"invoice_paid","payload":{"invoice_id":1,"amount":"1e999990",'
        b'"fiat":"RUB"}}',
        b'{"update_type":"invoice_paid","payload":{"invoice_id":1'
        + b"0" * 4000
        + b',"amount":"1"}}',
        b'{"update_type":"invoice_paid","payload":{"invoice_id":1,"amount":1.5e999,"fiat":"RUB"}}',
        b'{"update_type":"invoice_paid","payload":{"invoice_id":"\\u00b2","amount":"1"}}',
        b'{"update_type":"invoice_paid","payload":{"invoice_id":1,"amount":NaN,"fiat":"RUB"}}',
        b"\xff\xfe{}",
    ],
)
def test_signed_but_hostile(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator, raw: bytes
) -> None:
    """Deep nesting, huge exponents and odd ids, even correctly signed, are a quick 400."""
    started = time.perf_counter()
    assert (
        rejected(cryptobot, raw, {"crypto-pay-api-signature": cryptopay_emulator.sign(raw)}) == 400
    )
    assert time.perf_counter() - started < 0.5


def test_unsigned_hostile_bodies_are_refused_unread(
    cryptobot: CryptoBotProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signature comes first: an unsigned body never reaches the JSON reader."""

    def must_not_parse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("parsed before the signature was checked")

    monkeypatch.setattr(safe_json, "loads", must_not_parse)
    assert rejected(cryptobot, b"[" * 30000, {"crypto-pay-api-signature": "00"}) == 403


async def test_delivery_over_http(
    cryptobot: CryptoBotProvider,
    cryptopay_emulator: CryptoPayEmulator,
    invoice_id: str,
    receiver_factory: Start,
) -> None:
    receiver = await receiver_factory(cryptobot)
    cryptopay_emulator.webhook_url = receiver.url

    assert await cryptopay_emulator.pay(invoice_id, asset="BTC") == (200, "ok")
    [report] = receiver.reports
    assert (report.external_id, report.status, report.amount) == (
        invoice_id,
        ProviderStatus.PAID,
        Money.rub(150),
    )
    assert cryptopay_emulator.invoices[int(invoice_id)]["paid_asset"] == "BTC"

    body = cryptopay_emulator.build_webhook(invoice_id)
    assert (await cryptopay_emulator.send_webhook(body, None)).status == 403
    assert (
        await cryptopay_emulator.send_webhook(body + b"\n", cryptopay_emulator.sign(body))
    ).status == 403
    assert (
        await cryptopay_emulator.send_webhook(body, cryptopay_emulator.sign(body))
    ).status == 200
    assert len(receiver.reports) == 2
