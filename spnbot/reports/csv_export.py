"""CSV for spreadsheets: UTF-8 with a BOM (Excel then reads Cyrillic right), exact amounts, UTC.

Amounts are decimal text with the currency's digits ("100.00" RUB, "50" XTR), never floats.
Times are ISO-8601 in UTC ("2026-05-01T09:30:00Z"). A text cell that a spreadsheet would take
for a formula (a first name such as "=HYPERLINK(...)") gets a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import BinaryIO

from spnbot.domain.money import EXPONENTS

PAYMENT_COLUMNS = (
    "payment_id",
    "public_id",
    "provider_id",
    "customer_id",
    "customer_username",
    "plan",
    "days",
    "amount",
    "currency",
    "provider",
    "method",
    "status",
    "created_at_utc",
    "paid_at_utc",
    "paid_via",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    "username",
    "first_name",
    "language",
    "first_seen_utc",
    "terms_accepted_utc",
    "subscription_until_utc",
    "active",
    "referrer_id",
    "blocked_bot_utc",
    "paid_payments",
    "paid_rub",
    "paid_xtr",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def amount_text(minor: int, currency: str) -> str:
    exponent = EXPONENTS[currency]
    sign, units = ("-" if minor < 0 else ""), abs(minor)
    if exponent == 0:
        return f"{sign}{units}"
    whole, fraction = divmod(units, 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def utc_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def safe_text(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class CsvSink:
    """Rows written to a binary stream as they come: a year of payments never sits in memory."""

    def __init__(self, out: BinaryIO, header: Sequence[str]) -> None:
        self._text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
        self._writer = csv.writer(self._text, lineterminator="\r\n")
        self._writer.writerow(header)
        self.rows = 0

    def write(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self._writer.writerow(row)
            self.rows += 1

    def close(self) -> None:
        self._text.flush()
        self._text.detach()  # the caller owns the stream
