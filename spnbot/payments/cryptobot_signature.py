"""Crypto Pay webhook signature: pure functions, no I/O.

``crypto-pay-api-signature`` is ``hex(HMAC-SHA256(key=SHA256(token).digest(), msg=body))``
over the raw request body bytes (docs/PROVIDERS.md, "Crypto Pay API"). The body is never
parsed and re-serialised for this: any re-encoding could change the bytes that were signed.
"""

from __future__ import annotations

import hashlib
import hmac


def webhook_key(token: str) -> bytes:
    """The HMAC key: the raw SHA-256 digest of the API token (not its hex form)."""
    return hashlib.sha256(token.encode()).digest()


def sign_body(token: str, body: bytes) -> str:
    """The signature Crypto Pay sends for ``body``, as lowercase hex."""
    return hmac.new(webhook_key(token), body, hashlib.sha256).hexdigest()


def verify_body(token: str, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` is the one for exactly these bytes (constant-time)."""
    if not signature:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII str, and a forged header may be one.
    given = signature.strip().lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, sign_body(token, body).encode())
