"""1Plat callbacks through read_webhook: signed callbacks accepted, forgeries and bad bodies
refused, and a final status only signature_v2 vouches for asked back from the emulator's
order info over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest

from spnbot.domain.money import Money
from spnbot.domain.networks import parse_networks
from spnbot.payments.base import (
    AskBack,
    InvoiceRequest,
    ProviderError,
    ProviderStatus,
    StatusReport,
    WebhookRejected,
    WebhookRequest,
)
from spnbot.payments.oneplat import OnePlatProvider
from spnbot.sandbox.oneplat import OnePlatEmulator
from tests.payments.conftest import SECRET, SHOP_ID

INFO = "/api/merchant/order/info/"


@pytest.fixture
async def guid(oneplat: OnePlatProvider) -> str:
    invoice = await oneplat.create_invoice(
        InvoiceRequest("ord-9", 555, Money.rub(250), "SPN, 30 days", "sbp")
    )
    return invoice.external_id


def raw(body: dict[str, Any] | bytes) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()


async def read(
    provider: OnePlatProvider, body: dict[str, Any] | bytes, remote: str | None = "127.0.0.1"
) -> StatusReport:
    delivery = WebhookRequest({"Content-Type": "application/json"}, raw(body), remote)
    result = await provider.read_webhook(delivery)
    if isinstance(result, AskBack):  # the route asks only while our payment could change
        result = await result.fetch()
    assert isinstance(result, StatusReport)
    return result


async def rejected(
    provider: OnePlatProvider, body: dict[str, Any] | bytes, remote: str | None = "127.0.0.1"
) -> int:
    with pytest.raises(WebhookRejected) as caught:
        await read(provider, body, remote)
    return caught.value.http_status


def info_calls(emulator: OnePlatEmulator) -> int:
    return sum(1 for _, path in emulator.requests if path.startswith(INFO))


def without_hmac(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What an attacker holding one genuine callback can send: signature_v2 still verifies."""
    return {**{k: v for k, v in body.items() if k != "signature"}, **changes}


# -- genuine callbacks ---------------------------------------------------------------------


async def test_a_hmac_signed_paid_callback_is_believed_without_asking(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    before = info_calls(oneplat_emulator)
    report = await read(oneplat, oneplat_emulator.build_callback(guid, 1))
    assert (report.external_id, report.order_id, report.status, report.amount) == (
        guid,
        "ord-9",
        ProviderStatus.PAID,
        Money.rub(250),
    )
    assert report.raw_status == "1"
    assert info_calls(oneplat_emulator) == before


@pytest.mark.parametrize("status", [1, 2])
async def test_a_v2_only_paid_callback_is_confirmed_through_order_info(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, status: int
) -> None:
    await oneplat_emulator.pay(guid, status=status, deliver=False)
    body = oneplat_emulator.build_callback(guid, status, signatures=("signature_v2",))
    before = info_calls(oneplat_emulator)
    report = await read(oneplat, body)
    assert (report.status, report.amount, report.order_id) == (
        ProviderStatus.PAID,
        Money.rub(250),
        "ord-9",
    )
    assert info_calls(oneplat_emulator) == before + 1


async def test_a_v2_only_final_status_is_a_claim_that_asks_nothing_until_fetched(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, signatures=("signature_v2",))
    before = info_calls(oneplat_emulator)
    result = await oneplat.read_webhook(WebhookRequest({}, raw(body), "127.0.0.1"))
    assert isinstance(result, AskBack)
    assert (result.claim.external_id, result.claim.order_id, result.claim.status) == (
        guid,
        "ord-9",
        ProviderStatus.PAID,
    )
    assert info_calls(oneplat_emulator) == before
    assert (await result.fetch()).status is ProviderStatus.PENDING  # 1Plat: not paid
    assert info_calls(oneplat_emulator) == before + 1


async def test_ids_as_numbers_are_accepted_too(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    oneplat_emulator.callback_ids_as_numbers = True
    body = oneplat_emulator.build_callback(guid, 1)
    assert isinstance(body["payment_id"], int) and isinstance(body["user_id"], int)
    assert (await read(oneplat, body)).status is ProviderStatus.PAID


def test_the_emulator_sends_the_doc_types(oneplat_emulator: OnePlatEmulator, guid: str) -> None:
    body = oneplat_emulator.build_callback(guid, 1)
    assert [type(body[k]) for k in ("payment_id", "merchant_id", "user_id")] == [str] * 3
    assert [type(body[k]) for k in ("status", "amount", "amount_to_pay")] == [int] * 3


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (2, ProviderStatus.PAID),
        (-2, ProviderStatus.FAILED),
        (0, ProviderStatus.PENDING),
        (-1, ProviderStatus.PENDING),
        ("1", ProviderStatus.PAID),
    ],
)
async def test_statuses(
    oneplat: OnePlatProvider,
    oneplat_emulator: OnePlatEmulator,
    guid: str,
    status: Any,
    expected: ProviderStatus,
) -> None:
    assert (await read(oneplat, oneplat_emulator.build_callback(guid, status))).status is expected


@pytest.mark.parametrize("status", [5, "x", 1.5, True, None, [1], "01x", "9999"])
async def test_an_undocumented_status_is_refused(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, status: Any
) -> None:
    body = oneplat_emulator.build_callback(guid, status, signatures=("signature",))
    assert await rejected(oneplat, body) == 400


async def test_string_amount_and_unicode_fields(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, "250", extra={"comment": "оплата / SPN"})
    assert (await read(oneplat, body)).amount == Money.rub(250)
    # The same object sent with \\u escapes still verifies: the HMAC is over the parsed value.
    assert (await read(oneplat, json.dumps(body).encode())).amount == Money.rub(250)


async def test_hmac_over_sorted_keys_is_accepted(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, signatures=())
    message = json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    body["signature"] = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    assert (await read(oneplat, body)).status is ProviderStatus.PAID


async def test_payment_id_stands_in_for_guid(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, omit=("guid",), signatures=("signature",))
    assert (await read(oneplat, body)).external_id == str(body["payment_id"])


# -- edited callbacks (issue 10, item 2) ----------------------------------------------------


@pytest.mark.parametrize(
    ("real_status", "reported"), [(0, ProviderStatus.PENDING), (-2, ProviderStatus.FAILED)]
)
async def test_a_status_edited_callback_reports_what_1plat_says(
    oneplat: OnePlatProvider,
    oneplat_emulator: OnePlatEmulator,
    guid: str,
    real_status: int,
    reported: ProviderStatus,
) -> None:
    await oneplat_emulator.pay(guid, status=real_status, deliver=False)
    genuine = oneplat_emulator.build_callback(guid, real_status)
    report = await read(oneplat, without_hmac(genuine, status=1))
    assert report.status is reported
    assert report.raw_status == str(real_status)
    assert oneplat_emulator.find(guid).status == real_status


async def test_a_guid_swapped_to_a_paid_order_is_refused(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    other = await oneplat.create_invoice(
        InvoiceRequest("ord-10", 556, Money.rub(250), "SPN, 30 days", "card")
    )
    await oneplat_emulator.pay(other.external_id, deliver=False)  # someone else paid theirs
    genuine = oneplat_emulator.build_callback(guid, 0)  # ours, unpaid, genuinely signed
    swapped = without_hmac(genuine, status=1, guid=other.external_id)
    assert await rejected(oneplat, swapped) == 403
    unknown = without_hmac(genuine, status=1, guid="no-such-guid")
    assert await rejected(oneplat, unknown) == 403


async def test_a_hmac_that_does_not_verify_leaves_only_v2_to_vouch(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    genuine = oneplat_emulator.build_callback(guid, 0)
    edited = {**genuine, "status": 1}  # the stale HMAC stays in; signature_v2 still verifies
    before = info_calls(oneplat_emulator)
    assert (await read(oneplat, edited)).status is ProviderStatus.PENDING
    assert info_calls(oneplat_emulator) == before + 1


async def test_a_v2_only_pending_claim_asks_nobody(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 0, signatures=("signature_v2",))
    before = info_calls(oneplat_emulator)
    assert (await read(oneplat, body)).status is ProviderStatus.PENDING
    assert info_calls(oneplat_emulator) == before


async def test_order_info_unreachable_is_a_provider_error(
    session: aiohttp.ClientSession, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    async with OnePlatEmulator(shop_id=SHOP_ID, secret=SECRET) as gone:
        closed = gone.url  # a port that is closed once it stops
    provider = OnePlatProvider(session, base_url=closed, shop_id=SHOP_ID, secret=SECRET)
    body = oneplat_emulator.build_callback(guid, 1, signatures=("signature_v2",))
    with pytest.raises(ProviderError):
        await read(provider, body)
    # A HMAC-signed one needs no lookup and still goes through.
    assert (await read(provider, oneplat_emulator.build_callback(guid, 1))).status == "paid"


# -- forgeries -----------------------------------------------------------------------------


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
async def test_signed_by_someone_else(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, forge: dict[str, Any]
) -> None:
    assert await rejected(oneplat, oneplat_emulator.build_callback(guid, 1, **forge)) == 403


@pytest.mark.parametrize(
    "signatures", [("signature", "signature_v2"), ("signature_v2",), ("signature",)]
)
async def test_changed_amount_with_old_signatures(
    oneplat: OnePlatProvider,
    oneplat_emulator: OnePlatEmulator,
    guid: str,
    signatures: tuple[str, ...],
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, 2500, signatures=signatures)
    body["amount"] = 250
    assert await rejected(oneplat, body) == 403


@pytest.mark.parametrize("field", ["signature", "signature_v2"])
async def test_forged_signature_values(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, field: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, signatures=(field,))
    body[field] = body[field][:-1] + ("0" if body[field][-1] != "0" else "1")
    assert await rejected(oneplat, body) == 403


async def test_changed_status_with_old_hmac(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    body = oneplat_emulator.build_callback(guid, -2, signatures=("signature",))
    body["status"] = 1
    assert await rejected(oneplat, body) == 403


async def test_no_signature_at_all(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    assert await rejected(oneplat, oneplat_emulator.build_callback(guid, 1, signatures=())) == 403


# -- sender allow-list ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "allowed"),
    [
        ("159.89.25.81", True),
        ("165.22.81.141", True),
        ("159.89.25.82", False),
        ("127.0.0.1", False),
        (None, False),
        ("not-an-ip", False),
    ],
)
async def test_callback_ips(
    session: aiohttp.ClientSession,
    oneplat_emulator: OnePlatEmulator,
    guid: str,
    remote: str | None,
    allowed: bool,
) -> None:
    provider = OnePlatProvider(
        session,
        base_url=oneplat_emulator.url,
        shop_id=SHOP_ID,
        secret=SECRET,
        callback_ips=parse_networks("159.89.25.81, 165.22.81.141/32"),
    )
    body = oneplat_emulator.build_callback(guid, 1)
    if allowed:
        assert (await read(provider, body, remote)).status is ProviderStatus.PAID
    else:
        assert await rejected(provider, body, remote) == 403
        assert await rejected(provider, b"{not json", remote) == 403  # before the body is read


async def test_without_callback_ips_any_sender_may_call(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    assert (await read(oneplat, oneplat_emulator.build_callback(guid, 1), None)).status == "paid"


# -- bad bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["guid", "merchant_id", "status", "amount"])
async def test_missing_fields(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, field: str
) -> None:
    body = oneplat_emulator.build_callback(guid, 1)
    del body[field]
    if field == "guid":
        del body["payment_id"]
    assert await rejected(oneplat, body) == 400


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b"",
        b'{"amount": NaN}',
        b"[" * 30_000,
        b'{"a":' * 900 + b"1" + b"}" * 900,
        b'{"guid":"x","merchant_id":"m","status":1,"amount":1e999990,"signature":"00"}',
        b'{"guid":"x","merchant_id":"m","status":1,"amount":1e999999999,"signature":"00"}',
        b'{"guid":"x","merchant_id":"m","status":1,"amount":' + b"9" * 5000 + b',"signature":"0"}',
    ],
)
async def test_malformed_bodies(oneplat: OnePlatProvider, body: bytes) -> None:
    started = time.perf_counter()
    assert await rejected(oneplat, body) == 400
    assert time.perf_counter() - started < 0.5


async def test_a_huge_amount_string_is_not_interpreted_before_the_signature(
    oneplat: OnePlatProvider,
) -> None:
    # The attack of issue 10: this took 27 s when the amount was converted first.
    body = b'{"guid":"x","merchant_id":"m","status":1,"amount":"1e999990","signature":"00"}'
    started = time.perf_counter()
    assert await rejected(oneplat, body) == 403
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "amount", [250.5, "250.50", "250.0", -250, "-250", " 250", "+250", "1e3", "abc", True]
)
async def test_amounts_that_are_not_whole_rubles(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, amount: Any
) -> None:
    # Signed with the amount as sent (HMAC), so only the amount itself can be at fault.
    body = oneplat_emulator.build_callback(guid, 1, amount, signatures=("signature",))
    assert await rejected(oneplat, body) == 400


async def test_an_integral_float_amount_verifies_but_is_refused(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str
) -> None:
    # JSON.stringify writes 250 for 250.0, so the HMAC verifies; the type still is not ours.
    body = raw(oneplat_emulator.build_callback(guid, 1, signatures=("signature",)))
    assert b'"amount": 250,' in body
    assert await rejected(oneplat, body.replace(b'"amount": 250,', b'"amount": 250.0,')) == 400
    assert await rejected(oneplat, body.replace(b'"amount": 250,', b'"amount": 251,')) == 403


@pytest.mark.parametrize("amount", [[250], {"rub": 250}])
async def test_amounts_that_are_not_scalars(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, amount: Any
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, amount, signatures=("signature",))
    assert await rejected(oneplat, body) == 400


@pytest.mark.parametrize("field", ["payment_id", "merchant_id", "user_id", "guid"])
@pytest.mark.parametrize("value", [1.5, True, [1], {"id": 1}, "x" * 201])
async def test_ids_of_other_types(
    oneplat: OnePlatProvider, oneplat_emulator: OnePlatEmulator, guid: str, field: str, value: Any
) -> None:
    body = oneplat_emulator.build_callback(guid, 1, extra={field: value}, signatures=("signature",))
    assert await rejected(oneplat, body) == 400
