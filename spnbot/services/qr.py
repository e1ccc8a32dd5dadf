"""The QR code of a subscription link as a PNG, for setting the app up on another device."""

from __future__ import annotations

import io

import segno
from PIL import Image

# Large enough to scan from a phone screen; a 4-module quiet zone as the standard asks.
SCALE = 8
BORDER = 4
# Any of the eight masks makes a valid code; scoring all eight to pick the "best" is segno's
# slowest step (6 of 7 ms in pure Python) and buys nothing a phone camera notices.
MASK = 0


def qr_png(text: str) -> bytes:
    """segno computes the modules, Pillow scales and compresses them: drawing a QR code per
    activation was a third of the app's CPU in a payment burst."""
    code = segno.make_qr(text, error="m", mask=MASK)
    rows = list(code.matrix_iter(scale=1, border=BORDER))
    side = len(rows)
    pixels = bytes(0 if dark else 255 for row in rows for dark in row)
    image = Image.frombytes("L", (side, side), pixels).convert("1")
    image = image.resize((side * SCALE, side * SCALE), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
