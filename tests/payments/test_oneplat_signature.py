"""1Plat signature functions against vectors computed here straight from the formula text."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest

from spnbot.payments import oneplat_signature as sig

SHOP = "shop-17"
SECRET = "s3cret"


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def hmac_hex(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_body(**fields: object) -> dict[str, object]:
    payload = {"payment_id": 7, "guid": "g-1", "merchant_id": "ord-1", "status": 1, "amount": 100}
    payload.update(fields)
    return payload


@pytest.mark.parametrize("amount", [100, "100", 100.0])
def test_signature_v2_renders_whole_amounts_without_a_fraction(amount: object) -> None:
    assert sig.signature_v2("ord-1", amount, SHOP, SECRET) == md5_hex("ord-1100shop-17s3cret")


def test_signature_v2_keeps_a_string_amount_as_sent() -> None:
    assert sig.signature_v2("ord-1", "100.00", SHOP, SECRET) == md5_hex("ord-1100.00shop-17s3cret")
    assert sig.signature_v2(42, 5, SHOP, SECRET) == md5_hex("425shop-17s3cret")


@pytest.mark.parametrize("amount", [100.5, None, True, [100], {"a": 1}])
def test_signature_v2_refuses_what_it_cannot_render(amount: object) -> None:
    with pytest.raises(ValueError):
        sig.signature_v2("ord-1", amount, SHOP, SECRET)


def test_stringify_matches_json_stringify() -> None:
    value = {"b": 100.0, "a": "é/\n", "c": [1.5, None, True], "d": {"y": 2, "x": 1}}
    assert sig.stringify(value) == '{"b":100,"a":"é/\\n","c":[1.5,null,true],"d":{"y":2,"x":1}}'
    assert sig.stringify(value, sort_keys=True) == (
        '{"a":"é/\\n","b":100,"c":[1.5,null,true],"d":{"x":1,"y":2}}'
    )


def test_hmac_candidates_are_arrival_order_then_sorted_without_signature_fields() -> None:
    body = {"signature": "x", "status": 1, "signature_v2": "y", "amount": 100, "guid": "g"}
    assert sig.hmac_candidates(body, SECRET) == [
        hmac_hex(SECRET, '{"status":1,"amount":100,"guid":"g"}'),
        hmac_hex(SECRET, '{"amount":100,"guid":"g","status":1}'),
    ]


def test_v2_alone_verifies() -> None:
    body = signed_body(signature_v2=md5_hex("ord-1100shop-17s3cret"))
    assert sig.matching_signature(body, SHOP, SECRET) == "signature_v2"


def test_v2_hex_case_does_not_matter() -> None:
    body = signed_body(signature_v2=md5_hex("ord-1100shop-17s3cret").upper())
    assert sig.matching_signature(body, SHOP, SECRET) == "signature_v2"


@pytest.mark.parametrize("sort_keys", [False, True])
def test_hmac_alone_verifies_in_either_key_order(sort_keys: bool) -> None:
    payload = signed_body()
    message = json.dumps(payload, separators=(",", ":"), sort_keys=sort_keys)
    body = {"signature": hmac_hex(SECRET, message), **payload}
    assert sig.matching_signature(body, SHOP, SECRET) == "signature"


def test_hmac_over_spaced_json_is_not_accepted() -> None:
    payload = signed_body()
    body = {"signature": hmac_hex(SECRET, json.dumps(payload)), **payload}
    assert sig.matching_signature(body, SHOP, SECRET) is None


def test_a_wrong_v2_does_not_hide_a_right_hmac() -> None:
    payload = signed_body()
    good = hmac_hex(SECRET, json.dumps(payload, separators=(",", ":")))
    body = {"signature": good, "signature_v2": "0" * 32, **payload}
    assert sig.matching_signature(body, SHOP, SECRET) == "signature"


@pytest.mark.parametrize(
    "forged",
    [
        {"signature_v2": md5_hex("ord-1100other-shops3cret")},
        {"signature_v2": md5_hex("ord-1100shop-17other")},
        {"signature_v2": md5_hex("ord-1100.0shop-17s3cret")},
        {"signature": hmac_hex("other", '{"payment_id":7,"guid":"g-1"}')},
        {"signature": "ключ" * 16, "signature_v2": "é" * 32},
        {"signature": 12345, "signature_v2": None},
        {},
    ],
)
def test_forgeries_match_nothing(forged: dict[str, object]) -> None:
    assert sig.matching_signature(signed_body(**forged), SHOP, SECRET) is None


def test_a_changed_amount_breaks_both_signatures() -> None:
    payload = signed_body()
    body = {
        "signature": hmac_hex(SECRET, json.dumps(payload, separators=(",", ":"))),
        "signature_v2": md5_hex("ord-1100shop-17s3cret"),
        **payload,
    }
    assert sig.matching_signature(body, SHOP, SECRET) == "signature"
    body["amount"] = 10
    assert sig.matching_signature(body, SHOP, SECRET) is None


def test_the_hmac_wins_over_v2_when_both_verify() -> None:
    # Only the HMAC covers status and guid, so the caller must hear that it verified.
    payload = signed_body()
    body = {
        "signature_v2": md5_hex("ord-1100shop-17s3cret"),
        "signature": hmac_hex(SECRET, json.dumps(payload, separators=(",", ":"))),
        **payload,
    }
    assert sig.matching_signature(body, SHOP, SECRET) == "signature"
    body["status"] = 2  # the HMAC breaks, signature_v2 does not cover the status
    assert sig.matching_signature(body, SHOP, SECRET) == "signature_v2"


@pytest.mark.parametrize("amount", [Decimal("100"), Decimal("100.0"), Decimal("1E+2")])
def test_bounded_decimals_render_as_javascript_numbers(amount: Decimal) -> None:
    # safe_json reads fractions as Decimal; JavaScript held them as one double.
    assert sig.signature_v2("ord-1", amount, SHOP, SECRET) == md5_hex("ord-1100shop-17s3cret")
    assert sig.stringify({"a": amount, "b": Decimal("1.5")}) == '{"a":100,"b":1.5}'


@pytest.mark.parametrize("amount", [Decimal("100.5"), Decimal("NaN"), Decimal("Infinity")])
def test_decimals_that_are_not_whole_are_not_rendered_for_v2(amount: Decimal) -> None:
    with pytest.raises(ValueError):
        sig.signature_v2("ord-1", amount, SHOP, SECRET)
