"""1Plat callback signatures: pure functions, no I/O.

1Plat signs each callback twice (see docs/PROVIDERS.md, "1Plat"):

* ``signature_v2 = md5(merchant_id + amount + shop_id + shop_secret)``, hex, plain string
  concatenation. Numbers render the way JavaScript renders them: an integral amount is
  ``100``, never ``100.0``; a string amount is used exactly as sent.
* ``signature = HMAC-SHA256(key=shop_secret, msg=JSON.stringify(payload))``, hex, where
  ``payload`` is the callback body without ``signature`` and ``signature_v2``. Public
  integrations disagree on the key order, so exactly two renderings are accepted: keys in
  arrival order (what ``JSON.stringify`` of the received object gives) and keys sorted.
  Both are compact (no spaces) and keep non-ASCII characters unescaped, as
  ``JSON.stringify`` does.

A callback is authentic when either signature matches; comparisons are constant-time. Only
the HMAC covers ``status`` and ``guid``: what ``signature_v2`` alone vouches for is a hint
that the provider confirms through order info (``spnbot.payments.oneplat``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

SIGNATURE_FIELDS: Final = ("signature", "signature_v2")


def render_scalar(value: object) -> str:
    """A string or number as ``String(value)`` gives it in JavaScript (for the md5 formula).

    Raises ValueError for anything else, and for non-integral numbers: 1Plat amounts are
    whole rubles, and how a fraction would render is not documented, so it is not guessed.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError("a boolean is not a scalar 1Plat signs")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    # safe_json reads fractions as bounded Decimals; an integral one ("100.0") is 100 in JS.
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    raise ValueError(f"cannot render {value!r} for signature_v2")


def signature_v2(merchant_id: object, amount: object, shop_id: str, secret: str) -> str:
    """``md5(merchant_id + amount + shop_id + secret)`` as lowercase hex."""
    text = render_scalar(merchant_id) + render_scalar(amount) + shop_id + secret
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def stringify(value: object, *, sort_keys: bool = False) -> str:
    """Compact JSON the way ``JSON.stringify`` writes it.

    Same as ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` except that
    integral floats render as integers (JavaScript has one number type, so a value that
    arrived as ``100.0`` was ``100`` on the sender's side).
    """
    return json.dumps(
        _js_numbers(value),
        separators=(",", ":"),
        ensure_ascii=False,
        sort_keys=sort_keys,
        allow_nan=False,
    )


def _js_numbers(value: object) -> object:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal):
        # A bounded Decimal from safe_json: JavaScript held it as a double, so render it the
        # way a double renders (integral ones without a fraction, the rest shortest-repr).
        if not value.is_finite():
            raise ValueError("NaN/Infinity cannot come from JSON.stringify")
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, Mapping):
        return {key: _js_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_js_numbers(item) for item in value]
    return value


def hmac_signature(payload: Mapping[str, object], secret: str, *, sort_keys: bool) -> str:
    """``HMAC-SHA256(secret, JSON.stringify(payload))`` as lowercase hex."""
    message = stringify(payload, sort_keys=sort_keys).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hmac_candidates(body: Mapping[str, object], secret: str) -> list[str]:
    """Every HMAC ``signature`` we accept for this body (arrival order, then sorted keys)."""
    payload = {key: value for key, value in body.items() if key not in SIGNATURE_FIELDS}
    return [hmac_signature(payload, secret, sort_keys=order) for order in (False, True)]


def _same_hex(given: object, expected: str) -> bool:
    if not isinstance(given, str):
        return False
    # Bytes, not str: compare_digest refuses non-ASCII str, and a forged value may be one.
    return hmac.compare_digest(given.strip().lower().encode(), expected.encode())


def matching_signature(body: Mapping[str, object], shop_id: str, secret: str) -> str | None:
    """The strongest signature field that verifies, or None.

    ``"signature"`` (the HMAC, which covers every field) wins over ``"signature_v2"`` (which
    covers only ``merchant_id`` and ``amount``), so the caller knows how much it may believe.
    Both are always computed, so timing does not tell which one was close. A
    ``signature_v2`` only counts when ``merchant_id`` and ``amount`` can be rendered.
    """
    hmac_ok = False
    given = body.get("signature")
    if given is not None:
        try:
            candidates = hmac_candidates(body, secret)
        except ValueError:  # NaN/Infinity cannot come from JSON.stringify
            candidates = []
        # Check every candidate, so timing does not tell which rendering was close.
        hmac_ok = any([_same_hex(given, candidate) for candidate in candidates])
    v2_ok = False
    given_v2 = body.get("signature_v2")
    if given_v2 is not None:
        try:
            expected_v2 = signature_v2(body.get("merchant_id"), body.get("amount"), shop_id, secret)
        except ValueError:
            expected_v2 = None
        v2_ok = expected_v2 is not None and _same_hex(given_v2, expected_v2)
    if hmac_ok:
        return "signature"
    return "signature_v2" if v2_ok else None
