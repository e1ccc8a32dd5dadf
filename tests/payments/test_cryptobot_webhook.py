"""Crypto Pay webhooks: verified over the raw bytes, never over re-serialised JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from spnbot.domain.money import Money
from spnbot.payments.base import InvoiceRequest, ProviderStatus, WebhookRejected, WebhookVerifier
from spnbot.payments.cryptobot import CryptoBotProvider
from spnbot.sandbox.cryptopay import CryptoPayEmulator

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


async def test_other_update_types_change_nothing(
    cryptobot: CryptoBotProvider, cryptopay_emulator: CryptoPayEmulator, invoice_id: str
) -> None:
    body = cryptopay_emulator.build_webhook(invoice_id, update_type="invoice_expired")
    report = cryptobot.parse_webhook(
        {"crypto-pay-api-signature": cryptopay_emulator.sign(body)}, body
    )
    assert (report.external_id, report.status, report.raw_status) == (
        invoice_id,
        ProviderStatus.PENDING,
        "invoice_expired",
    )


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
