"""YooKassa notifications: never believed as they come; the payment is fetched back."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from spnbot.domain.money import Money
from spnbot.payments.base import (
    AskBack,
    InvoiceRequest,
    ProviderError,
    ProviderStatus,
    StatusReport,
    WebhookAck,
    WebhookRejected,
    WebhookRequest,
)
from spnbot.payments.yookassa import YooKassaProvider, trusted_networks
from spnbot.sandbox.yookassa import YooKassaEmulator
from tests.payments.conftest import YOOKASSA_KEY, YOOKASSA_SHOP

UNKNOWN_ID = "2d8d5c1e-000f-5000-8000-1a2b3c4d5e6f"
YOOKASSA_SENDER = "185.71.76.7"


def delivery(body: bytes | dict[str, Any], remote: str | None = YOOKASSA_SENDER) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest({"Content-Type": "application/json"}, raw, remote)


def notification(event: str, payment: dict[str, Any]) -> dict[str, Any]:
    return {"type": "notification", "event": event, "object": payment}


async def new_payment(yookassa: YooKassaProvider, order_id: str = "ord-1") -> str:
    invoice = await yookassa.create_invoice(InvoiceRequest(order_id, 1, Money.rub(150), "SPN"))
    return invoice.external_id


async def read(yookassa: YooKassaProvider, request: WebhookRequest) -> StatusReport:
    """What the route settles once it asks (it asks only while our payment could change)."""
    result = await yookassa.read_webhook(request)
    assert isinstance(result, AskBack), result
    return await result.fetch()


async def test_a_notification_is_a_claim_that_asks_nothing_until_fetched(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    payment_id = await new_payment(yookassa)
    forged = dict(yookassa_emulator.payments[payment_id], status="succeeded", paid=True)
    asked = len(yookassa_emulator.requests)
    result = await yookassa.read_webhook(delivery(notification("payment.succeeded", forged)))
    assert isinstance(result, AskBack)
    assert (result.claim.external_id, result.claim.order_id, result.claim.status) == (
        payment_id,
        "ord-1",
        ProviderStatus.PAID,
    )
    assert len(yookassa_emulator.requests) == asked
    assert (await result.fetch()).status is ProviderStatus.PENDING
    assert yookassa_emulator.requests[asked:] == [("GET", f"/v3/payments/{payment_id}")]


async def test_forged_success_is_reported_as_the_api_sees_it(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    payment_id = await new_payment(yookassa)
    forged = dict(yookassa_emulator.payments[payment_id], status="succeeded", paid=True)
    report = await read(yookassa, delivery(notification("payment.succeeded", forged)))
    assert report.status is ProviderStatus.PENDING
    assert (report.external_id, report.order_id) == (payment_id, "ord-1")
    assert ("GET", f"/v3/payments/{payment_id}") in yookassa_emulator.requests


async def test_success_carries_the_amount_from_the_api(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    payment_id = await new_payment(yookassa)
    await yookassa_emulator.pay(payment_id, notify=False)
    body = json.loads(yookassa_emulator.notification(payment_id))
    body["object"]["amount"] = {"value": "1.00", "currency": "RUB"}  # what a forger would say
    body["object"]["metadata"] = {"order_id": "someone-else"}
    report = await read(yookassa, delivery(body))
    assert report.status is ProviderStatus.PAID
    assert report.amount == Money.rub(150)
    assert report.order_id == "ord-1"


async def test_canceled_is_failed(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    payment_id = await new_payment(yookassa)
    await yookassa_emulator.cancel(payment_id, notify=False)
    report = await read(yookassa, delivery(yookassa_emulator.notification(payment_id)))
    assert (report.status, report.raw_status) == (ProviderStatus.FAILED, "expired_on_confirmation")


async def test_notification_about_a_payment_the_api_does_not_know(
    yookassa: YooKassaProvider,
) -> None:
    body = notification("payment.succeeded", {"id": UNKNOWN_ID, "status": "succeeded"})
    with pytest.raises(WebhookRejected) as caught:
        await read(yookassa, delivery(body))
    assert caught.value.http_status == 404


@pytest.mark.parametrize(
    "event", ["payment.waiting_for_capture", "refund.succeeded", "deal.closed", "payment.new"]
)
async def test_events_that_settle_nothing_are_acknowledged_without_asking(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator, event: str
) -> None:
    result = await yookassa.read_webhook(
        delivery(notification(event, {"id": UNKNOWN_ID, "status": "succeeded"}))
    )
    assert isinstance(result, WebhookAck)
    assert yookassa_emulator.requests == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"type": "notification"}',
        b"[" * 5000 + b"]" * 5000,
        json.dumps({"type": "refund", "event": "payment.succeeded", "object": {}}).encode(),
        json.dumps({"type": "notification", "event": 7, "object": {"id": UNKNOWN_ID}}).encode(),
        json.dumps(notification("payment.succeeded", {"id": "../../me"})).encode(),
        json.dumps(notification("payment.succeeded", {"id": 12})).encode(),
        json.dumps(notification("payment.succeeded", {})).encode(),
    ],
    ids=[
        "text",
        "bad-utf8",
        "array",
        "no-event",
        "deep",
        "not-notification",
        "event-number",
        "path-id",
        "number-id",
        "no-id",
    ],
)
async def test_bad_bodies_are_400_and_ask_nothing(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator, body: bytes
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        await yookassa.read_webhook(delivery(body))
    assert caught.value.http_status == 400
    assert yookassa_emulator.requests == []


async def test_api_down_while_checking_is_a_provider_error(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    payment_id = await new_payment(yookassa)
    await yookassa_emulator.pay(payment_id, notify=False)
    yookassa_emulator.outage = 503
    with pytest.raises(ProviderError) as caught:
        await read(yookassa, delivery(yookassa_emulator.notification(payment_id)))
    assert caught.value.retryable is True


# The sender allow-list -----------------------------------------------------------------------


def guarded(
    session: aiohttp.ClientSession, emulator: YooKassaEmulator, spec: str | None
) -> YooKassaProvider:
    return YooKassaProvider(
        session,
        shop_id=YOOKASSA_SHOP,
        secret_key=YOOKASSA_KEY,
        api_url=emulator.url,
        trusted_networks=trusted_networks(spec),
    )


@pytest.mark.parametrize(
    ("spec", "remote", "allowed"),
    [
        ("default", "185.71.76.7", True),
        ("default", "77.75.156.35", True),
        ("default", "77.75.154.200", True),
        ("default", "2a02:5180::15", True),
        ("default", "185.71.76.32", False),  # just past 185.71.76.0/27
        ("default", "10.0.0.1", False),
        ("default", None, False),
        ("default", "not-an-ip", False),
        ("192.0.2.0/24, 198.51.100.7", "198.51.100.7", True),
        ("192.0.2.0/24, 198.51.100.7", "185.71.76.7", False),
        (None, "10.0.0.1", True),  # unset: no check
        (None, None, True),
    ],
)
async def test_allow_list(
    session: aiohttp.ClientSession,
    yookassa_emulator: YooKassaEmulator,
    spec: str | None,
    remote: str | None,
    allowed: bool,
) -> None:
    provider = guarded(session, yookassa_emulator, spec)
    payment_id = await new_payment(provider)
    body = yookassa_emulator.notification(payment_id, "payment.succeeded")
    asked = len(yookassa_emulator.requests)
    if allowed:
        report = await read(provider, delivery(body, remote))
        assert report.status is ProviderStatus.PENDING
    else:
        with pytest.raises(WebhookRejected) as caught:
            await provider.read_webhook(delivery(body, remote))
        assert caught.value.http_status == 403
        assert len(yookassa_emulator.requests) == asked  # refused before asking anything


def test_trusted_networks_spec() -> None:
    assert trusted_networks(None) == trusted_networks("  ") == ()
    assert len(trusted_networks("DEFAULT")) == 7
    with pytest.raises(ValueError, match="not-a-net"):
        trusted_networks("10.0.0.0/8,not-a-net")
