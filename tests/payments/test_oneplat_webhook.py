"""1Plat callbacks: the emulator's signed callbacks accepted, forgeries and bad bodies refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from spnbot.domain.money import Money
from spnbot.payments.base import InvoiceRequest, ProviderStatus, WebhookRejected, WebhookVerifier
from spnbot.payments.oneplat import OnePlatProvider
from spnbot.sandbox.oneplat import OnePlatEmulator

Start = Callable[[WebhookVerifier], Awaitable[Any]]


@pytest.fixture
async def guid(oneplat: OnePlatProvider) -> str:
    invoice = await oneplat.create_invoice(
        InvoiceRequest("ord-9", 555, Money.rub(250), "SPN, 30 days", "sbp")
    )
    return invoice.external_id


def parse(provider: OnePlatProvider, body: dict[str, Any] | bytes) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return provider.parse_webhook({"Content-Type": "application/json"}, raw)


def rejected(provider: OnePlatProvider, body: dict[str, Any] | bytes) -> int:
    with pytest.raises(WebhookRejected) as caught:
        parse(provider, body)
    return caught.value.http_status


@pytest.mark.parametrize(
    "signatures", [("signature", "signature_v2"), ("signature_v2",), ("signature",)]
)
def test_emulator_callbacks_are_accepted(
    oneplat: OnePlatProvider,
    oneplat_emulator: OnePlatEmulator,
    guid: str,
    signatures: tuple[str, ...],
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, signatures=signatures)
    report = parse(oneplat, body)
    assert report.external_id == guid
    assert report.order_id == "ord-9"
    assert report.status is ProviderStatus.PAID
    assert report.amount == Money.rub(250)
    assert report.raw_status == "1"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (2, ProviderStatus.PAID),
        (-2, ProviderStatus.FAILED),
        (0, ProviderStatus.PENDING),
        ("1", ProviderStatus.PAID),
    ],
)
def test_statuses(
    oneplat: OnePlatProvider,
    oneplat_emulator: OnePlatEmulator,
    guid: str,
    status: Any,
    expected: ProviderStatus,
) -> None:
    assert parse(oneplat, oneplat_emulator.build_callback(guid, status)).status is expected


def test_an_undocumented_status_is_refused(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    assert rejected(oneplat, oneplat_emulator.build_callback(guid, 5)) == 400


def test_string_amount_and_unicode_fields(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, "250", extra={"comment": "оплата / SPN"})
    assert parse(oneplat, body).amount == Money.rub(250)
    # The same object sent with \\u escapes still verifies: the HMAC is over the parsed value.
    assert parse(oneplat, json.dumps(body).encode()).amount == Money.rub(250)


def test_integral_float_amount_counts_as_integer(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    raw = json.dumps(oneplat_emulator.build_callback(guid, 1)).encode()
    assert b'"amount": 250,' in raw
    report = parse(oneplat, raw.replace(b'"amount": 250,', b'"amount": 250.0,'))
    assert report.amount == Money.rub(250)


def test_hmac_over_sorted_keys_is_accepted(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, signatures=())
    message = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    secret = oneplat_emulator.secret.encode()
    body["signature"] = hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()
    assert parse(oneplat, body).status is ProviderStatus.PAID


def test_payment_id_stands_in_for_guid(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, signatures=("signature_v2",))
    del body["guid"]
    assert parse(oneplat, body).external_id == str(body["payment_id"])


@pytest.mark.parametrize(
    "forge",
    [
        # The HMAC does not cover shop_id, so another shop id alone only breaks signature_v2.
        {"shop_id": "shop-18", "secret": "another-secret"},
        {"secret": "another-secret"},
        {"shop_id": "shop-18", "signatures": ("signature_v2",)},
        {"secret": "another-secret", "signatures": ("signature",)},
    ],
)
def test_signed_by_someone_else(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, forge: dict[str, Any]
) -> None:
    assert rejected(oneplat, oneplat_emulator.build_callback(guid, 1, **forge)) == 403


@pytest.mark.parametrize(
    "signatures", [("signature", "signature_v2"), ("signature_v2",), ("signature",)]
)
def test_changed_amount_with_old_signatures(
    oneplat: OnePlatProvider,
    oneplat_emulator: OnePlatEmulator,
    guid: str,
    signatures: tuple[str, ...],
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, 2500, signatures=signatures)
    body["amount"] = 250
    assert rejected(oneplat, body) == 403


@pytest.mark.parametrize("field", ["signature", "signature_v2"])
def test_forged_signature_values(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, field: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, signatures=(field,))
    body[field] = body[field][:-1] + ("0" if body[field][-1] != "0" else "1")
    assert rejected(oneplat, body) == 403


def test_changed_status_with_old_hmac(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, -2, signatures=("signature",))
    body["status"] = 1
    assert rejected(oneplat, body) == 403


def test_no_signature_at_all(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    assert rejected(oneplat, oneplat_emulator.build_callback(guid, 1, signatures=())) == 403


@pytest.mark.parametrize("field", ["guid", "merchant_id", "status", "amount"])
def test_missing_fields(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, field: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1)
    del body[field]
    if field == "guid":
        del body["payment_id"]
    assert rejected(oneplat, body) == 400


@pytest.mark.parametrize(
    "raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b"", b'{"amount": NaN}']
)
def test_malformed_bodies(oneplat: OnePlatProvider, raw: bytes) -> None:
    assert rejected(oneplat, raw) == 400


@pytest.mark.parametrize("amount", [250.5, "250.50", -250, "abc", True, [250]])
def test_amounts_that_are_not_whole_rubles(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, amount: Any
) -> None:
    # Signed with the amount as sent (HMAC), so only the amount itself can be at fault.
    body = oneplat_emulator.build_callback(guid, 1, amount, signatures=("signature",))
    assert rejected(oneplat, body) == 400


async def test_delivery_over_http(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, receiver_factory: Start
) -> None:
    receiver = await receiver_factory(oneplat)
    oneplat_emulator.callback_url = receiver.url

    assert await oneplat_emulator.pay("ord-9") == (200, "ok")
    assert [(r.external_id, r.status) for r in receiver.reports] == [(guid, ProviderStatus.PAID)]

    forged = oneplat_emulator.build_callback(guid, 1, secret="guess")
    assert (await oneplat_emulator.send_callback(forged)).status == 403
    assert (await oneplat_emulator.send_callback(b"<html>", content_type="text/html")).status == 400
    assert (await oneplat_emulator.pay(guid, status=2, deliver=False)).status is None
    assert len(receiver.reports) == 1
    assert [r.http_status for r in receiver.rejections] == [403, 400]
