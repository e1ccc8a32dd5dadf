"""The QR code of a subscription link as a PNG, for setting the app up on another device."""

from __future__ import annotations

import io

import segno

# Large enough to scan from a phone screen; a 4-module quiet zone as the standard asks.
SCALE = 8
BORDER = 4


def qr_png(text: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="png", scale=SCALE, border=BORDER)
    return out.getvalue()
