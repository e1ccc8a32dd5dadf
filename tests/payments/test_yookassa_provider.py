"""YooKassaProvider against the YooKassa emulator over real HTTP, and its pure mapping."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from spnbot.domain.money import Money
from spnbot.payments.base import InvoiceRequest, ProviderError, ProviderStatus
from spnbot.payments.yookassa import YooKassaProvider, idempotence_key, report_of
from spnbot.sandbox.yookassa import YooKassaEmulator
from tests.payments.conftest import YOOKASSA_KEY, YOOKASSA_SHOP, yookassa_auth

PAYMENT_ID = "2d8d5c1e-000f-5000-8000-1a2b3c4d5e6f"


def request(
    order_id: str = "ord-1", amount: Money | None = None, description: str = "SPN, 30 days"
) -> InvoiceRequest:
    return InvoiceRequest(order_id, 777, amount or Money.rub(150), description)


def provider(session: aiohttp.ClientSession, api_url: str, **options: Any) -> YooKassaProvider:
    values: dict[str, Any] = {"shop_id": YOOKASSA_SHOP, "secret_key": YOOKASSA_KEY}
    return YooKassaProvider(session, api_url=api_url, **(values | options))


# The mapping, on payment objects as the API writes them -------------------------------------


def payment(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": PAYMENT_ID,
        "status": status,
        "amount": {"value": "150.00", "currency": "RUB"},
        "metadata": {"order_id": "ord-9"},
        **fields,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", ProviderStatus.PENDING),
        ("waiting_for_capture", ProviderStatus.PENDING),
        ("succeeded", ProviderStatus.PAID),
        ("canceled", ProviderStatus.FAILED),
        ("refunded_someday", ProviderStatus.PENDING),  # undocumented: changes nothing
    ],
)
def test_status_mapping(status: str, expected: ProviderStatus) -> None:
    report = report_of(payment(status))
    assert report.status is expected
    assert (report.external_id, report.order_id) == (PAYMENT_ID, "ord-9")
    assert report.amount == Money(15000, "RUB")


def test_canceled_reports_the_cancellation_reason() -> None:
    details = {"party": "payment_network", "reason": "insufficient_funds"}
    report = report_of(payment("canceled", cancellation_details=details))
    assert (report.status, report.raw_status) == (ProviderStatus.FAILED, "insufficient_funds")
    assert report_of(payment("canceled")).raw_status == "canceled"


@pytest.mark.parametrize(
    "amount",
    [
        {"value": 150.0, "currency": "RUB"},  # a float is never money
        {"value": "150.001", "currency": "RUB"},
        {"value": "150.00", "currency": "USD"},
        {"value": "abc", "currency": "RUB"},
        "150.00",
        None,
    ],
)
def test_unreadable_amount_is_unknown(amount: object) -> None:
    assert report_of(payment("succeeded", amount=amount)).amount is None


def test_missing_metadata_gives_no_order_id() -> None:
    assert report_of(payment("pending", metadata=None)).order_id is None


def test_idempotence_key_is_stable_per_order() -> None:
    key = idempotence_key("ord-1")
    assert key == idempotence_key("ord-1") != idempotence_key("ord-2")
    assert len(key) <= 64


# Create ---------------------------------------------------------------------------------------


async def test_create_sends_a_redirect_payment_in_rubles(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    invoice = await yookassa.create_invoice(request())
    stored = yookassa_emulator.payments[invoice.external_id]
    assert invoice.pay_url == stored["confirmation"]["confirmation_url"]
    assert invoice.details == {} and invoice.amount_to_pay is None
    [body] = yookassa_emulator.bodies
    assert body == {
        "amount": {"value": "150.00", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": "https://t.me/spn_bot"},
        "description": "SPN, 30 days",
        "metadata": {"order_id": "ord-1"},
    }
    assert (stored["status"], stored["paid"]) == ("pending", False)


async def test_kopecks_and_long_descriptions(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    invoice = await yookassa.create_invoice(request("ord-2", Money.parse("99.5", "RUB"), "д" * 300))
    stored = yookassa_emulator.payments[invoice.external_id]
    assert stored["amount"] == {"value": "99.50", "currency": "RUB"}
    assert stored["description"] == "д" * 128


async def test_retried_create_returns_the_first_payment(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    first = await yookassa.create_invoice(request())
    again = await yookassa.create_invoice(request())
    assert again == first
    assert len(yookassa_emulator.payments) == 1
    other = await yookassa.create_invoice(request("ord-other"))
    assert other.external_id != first.external_id


async def test_same_order_with_another_body_is_refused(
    session: aiohttp.ClientSession, yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    await yookassa.create_invoice(request())
    changed = provider(session, yookassa_emulator.url, return_url="https://t.me/other_bot")
    with pytest.raises(ProviderError, match="Idempotence key duplicated") as caught:
        await changed.create_invoice(request())
    assert caught.value.retryable is False
    assert len(yookassa_emulator.payments) == 1


async def test_stars_and_zero_are_not_sent(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    for amount in (Money.stars(50), Money(0, "RUB")):
        with pytest.raises(ProviderError) as caught:
            await yookassa.create_invoice(request(amount=amount))
        assert caught.value.retryable is False
    assert yookassa_emulator.requests == []


async def test_receipt_carries_the_item_and_the_customer(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    yookassa_emulator.receipts_required = True
    with_receipt = provider(
        session, yookassa_emulator.url, receipt_email="tg{telegram_id}@example.com", vat_code=4
    )
    await with_receipt.create_invoice(request(amount=Money.parse("99.90", "RUB")))
    [body] = yookassa_emulator.bodies
    assert body["receipt"] == {
        "customer": {"email": "tg777@example.com"},
        "items": [
            {
                "description": "SPN, 30 days",
                "quantity": 1,
                "amount": {"value": "99.90", "currency": "RUB"},
                "vat_code": 4,
                "payment_subject": "service",
                "payment_mode": "full_payment",
            }
        ],
    }


async def test_shop_that_needs_receipts_refuses_a_payment_without(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    yookassa_emulator.receipts_required = True
    with pytest.raises(ProviderError, match=r"invalid_request.*receipt") as caught:
        await yookassa.create_invoice(request())
    assert caught.value.retryable is False


# Status -------------------------------------------------------------------------------------


async def test_statuses_follow_the_payment(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    paid = await yookassa.create_invoice(request("ord-paid"))
    canceled = await yookassa.create_invoice(request("ord-canceled"))
    waiting = await yookassa.create_invoice(request("ord-waiting"))
    await yookassa_emulator.pay(paid.external_id, notify=False)
    await yookassa_emulator.cancel(
        canceled.external_id, reason="canceled_by_merchant", notify=False
    )
    reports = await yookassa.fetch_statuses(
        [paid.external_id, canceled.external_id, waiting.external_id, paid.external_id]
    )
    by_id = {r.external_id: r for r in reports}
    assert len(reports) == 3  # the repeated id is asked once
    assert by_id[paid.external_id].status is ProviderStatus.PAID
    assert by_id[paid.external_id].amount == Money.rub(150)
    assert by_id[paid.external_id].order_id == "ord-paid"
    assert by_id[canceled.external_id].status is ProviderStatus.FAILED
    assert by_id[canceled.external_id].raw_status == "canceled_by_merchant"
    assert by_id[waiting.external_id].status is ProviderStatus.PENDING


async def test_unknown_and_malformed_ids_are_left_out(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator
) -> None:
    known = await yookassa.create_invoice(request())
    asked_before = len(yookassa_emulator.requests)
    reports = await yookassa.fetch_statuses([PAYMENT_ID, "../me", "x" * 36, known.external_id])
    assert [r.external_id for r in reports] == [known.external_id]
    # Only the well-formed ids reached the API; "../me" never shaped a path.
    assert [path for _, path in yookassa_emulator.requests[asked_before:]] == [
        f"/v3/payments/{PAYMENT_ID}",
        f"/v3/payments/{known.external_id}",
    ]


async def test_capture_false_waits_and_stays_pending(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    # A hand-made create with capture false, as a shop capturing by hand would do.
    body = {
        "amount": {"value": "150.00", "currency": "RUB"},
        "capture": False,
        "confirmation": {"type": "redirect", "return_url": "https://t.me/"},
    }
    async with session.post(
        yookassa_emulator.url + "/payments",
        json=body,
        headers={"Authorization": yookassa_auth(), "Idempotence-Key": "k-1"},
    ) as response:
        payment_id = (await response.json())["id"]
    await yookassa_emulator.pay(payment_id, notify=False)
    [report] = await provider(session, yookassa_emulator.url).fetch_statuses([payment_id])
    assert (report.status, report.raw_status) == (ProviderStatus.PENDING, "waiting_for_capture")


# Errors ---------------------------------------------------------------------------------------


async def test_bad_credentials(
    session: aiohttp.ClientSession, yookassa_emulator: YooKassaEmulator
) -> None:
    wrong = provider(session, yookassa_emulator.url, secret_key="test_wrong")
    for call in (wrong.create_invoice(request()), wrong.fetch_statuses([PAYMENT_ID])):
        with pytest.raises(ProviderError, match="401 invalid_credentials") as caught:
            await call
        assert caught.value.retryable is False
    assert YOOKASSA_KEY not in str(caught.value)


@pytest.mark.parametrize("outage", [503, 500, 429])
async def test_outage_is_worth_retrying(
    yookassa: YooKassaProvider, yookassa_emulator: YooKassaEmulator, outage: int
) -> None:
    known = await yookassa.create_invoice(request())
    yookassa_emulator.outage = outage
    for call in (
        yookassa.create_invoice(request("ord-2")),
        yookassa.fetch_statuses([known.external_id]),
    ):
        with pytest.raises(ProviderError, match=str(outage)) as caught:
            await call
        assert caught.value.retryable is True
    yookassa_emulator.outage = None
    # After the outage the same order's retries land on one payment.
    retried = await yookassa.create_invoice(request("ord-2"))
    assert await yookassa.create_invoice(request("ord-2")) == retried
    assert len(yookassa_emulator.payments) == 2


async def test_unreachable_api_is_worth_retrying(session: aiohttp.ClientSession) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    gone = provider(session, f"http://127.0.0.1:{port}/v3", timeout=2.0)
    with pytest.raises(ProviderError, match="unreachable") as caught:
        await gone.create_invoice(request())
    assert caught.value.retryable is True


async def test_an_answer_about_another_payment_is_refused(session: aiohttp.ClientSession) -> None:
    # No emulator misroutes; a tiny server standing in for a broken proxy does.
    async def other(request: web.Request) -> web.Response:
        return web.json_response(payment("succeeded", id="ffffffff-000f-5000-8000-000000000000"))

    app = web.Application()
    app.router.add_get("/v3/payments/{payment_id}", other)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        broken = provider(session, f"http://127.0.0.1:{runner.addresses[0][1]}/v3")
        with pytest.raises(ProviderError, match="another payment") as caught:
            await broken.fetch_statuses([PAYMENT_ID])
        assert caught.value.retryable is False
    finally:
        await runner.cleanup()
