"""Property tests of the 1Plat callback parser: no input gets past it unverified, none
raises anything but WebhookRejected (400/403), none takes long."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spnbot.payments.base import ProviderStatus, WebhookRejected
from spnbot.payments.oneplat import parse_callback
from spnbot.payments.oneplat_signature import hmac_signature

SHOP, SECRET = "shop-17", "s3cret"
FIELDS = ("guid", "payment_id", "merchant_id", "user_id", "status", "amount", "signature")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**45), max_value=10**45),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["1", "-2", "250", "1e999990", "1e999999999", "0x10", "²", " 1", "NaN"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=9)
number_texts = st.from_regex(
    r"-?[0-9]{1,60}(\.[0-9]{1,60})?([eE][+-]?[0-9]{1,12})?", fullmatch=True
)


def outcome(raw: bytes) -> Any:
    started = time.perf_counter()
    try:
        result: Any = parse_callback(raw, shop_id=SHOP, secret=SECRET)
    except WebhookRejected as exc:
        assert exc.http_status in (400, 403), exc
        result = exc
    assert time.perf_counter() - started < 0.5
    return result


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_unsigned_bodies_are_always_refused(body: dict[str, Any]) -> None:
    result = outcome(json.dumps(body, ensure_ascii=False).encode())
    assert isinstance(result, WebhookRejected)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_refused(raw: bytes) -> None:
    assert isinstance(outcome(raw), WebhookRejected)


@settings(max_examples=100, deadline=None)
@given(number_texts, st.sampled_from(["amount", "status", "merchant_id", "payment_id"]))
def test_any_number_text_in_any_field_is_answered_fast(number: str, field: str) -> None:
    body = {"guid": "g", "merchant_id": "m", "status": 1, "amount": 100, "signature": "00"}
    text = json.dumps(body).replace(json.dumps(body[field]) if field in body else "", number, 1)
    if field == "payment_id":
        text = text[:-1] + f',"payment_id":{number}}}'
    assert isinstance(outcome(text.encode()), WebhookRejected)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_signed_bodies_are_read_or_refused_with_400(body: dict[str, Any]) -> None:
    # Signed with our secret: whatever the fields hold, the answer is a report or a 400.
    payload = {k: v for k, v in body.items() if k not in ("signature", "signature_v2")}
    try:
        payload["signature"] = hmac_signature(payload, SECRET, sort_keys=False)
    except ValueError:
        return  # NaN and the like cannot be signed by JSON.stringify either
    result = outcome(json.dumps(payload, ensure_ascii=False).encode())
    if isinstance(result, WebhookRejected):
        assert result.http_status == 400 or not _has_required(payload), result.reason
    else:
        assert result.verified_by == "signature"
        assert result.claim.status in set(ProviderStatus)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-5, max_value=5), st.text(max_size=12))
def test_v2_only_claims_are_never_vouched(status: int, guid: str) -> None:
    # Whatever status and guid an attacker writes next to a genuine signature_v2.
    v2 = hashlib.md5(f"ord-1250{SHOP}{SECRET}".encode(), usedforsecurity=False).hexdigest()
    body = {"guid": guid or "g", "merchant_id": "ord-1", "status": status, "amount": 250}
    result = outcome(json.dumps({**body, "signature_v2": v2}).encode())
    if not isinstance(result, WebhookRejected):
        assert not result.vouched


def _has_required(body: dict[str, Any]) -> bool:
    present = {k for k, v in body.items() if v is not None and v != ""}
    return {"merchant_id", "status", "amount"} <= present and bool({"guid", "payment_id"} & present)
