"""Crypto Pay webhook signature against a vector computed here from the formula text."""

from __future__ import annotations

import hashlib
import hmac

from spnbot.payments import cryptobot_signature as sig

TOKEN = "4242:AAtestTOKEN"
BODY = b'{"update_id":1,"update_type":"invoice_paid","payload":{"invoice_id":7,"amount":"150"}}'


def expected() -> str:
    # hex(HMAC-SHA256(key = SHA256(token) raw digest, msg = raw body))
    return hmac.new(hashlib.sha256(TOKEN.encode()).digest(), BODY, hashlib.sha256).hexdigest()


def test_sign_body_follows_the_formula() -> None:
    assert sig.webhook_key(TOKEN) == hashlib.sha256(TOKEN.encode()).digest()
    assert sig.sign_body(TOKEN, BODY) == expected()


def test_verify_accepts_the_signature_in_either_case() -> None:
    assert sig.verify_body(TOKEN, BODY, expected())
    assert sig.verify_body(TOKEN, BODY, expected().upper())


def test_verify_refuses() -> None:
    hex_key = hashlib.sha256(TOKEN.encode()).hexdigest().encode()  # a common mistake
    assert not sig.verify_body(TOKEN, BODY, hmac.new(hex_key, BODY, hashlib.sha256).hexdigest())
    assert not sig.verify_body(
        TOKEN, BODY, hmac.new(TOKEN.encode(), BODY, hashlib.sha256).hexdigest()
    )
    assert not sig.verify_body(TOKEN, BODY.replace(b"150", b"151"), expected())
    assert not sig.verify_body(TOKEN, BODY + b" ", expected())
    assert not sig.verify_body("4242:other", BODY, expected())
    assert not sig.verify_body(TOKEN, BODY, None)
    assert not sig.verify_body(TOKEN, BODY, "")
    assert not sig.verify_body(TOKEN, BODY, "é" * 64)
