"""Tariffs: what a customer can buy. Parsed from configuration, never hard-wired in handlers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from spnbot.domain.money import Money

# The seed's prices: 1, 3, 6 and 12 months. Stars prices follow roughly 1 ⭐ ≈ 2 ₽.
DEFAULT_TARIFFS = "1m:30:100:50,3m:90:249:125,6m:180:449:225,12m:365:990:495"

_CODE = re.compile(r"^[a-z0-9]{1,8}$")


@dataclass(frozen=True)
class Tariff:
    code: str  # "1m"; appears in callback data, so short and plain
    days: int
    price_rub: int  # whole rubles: 1Plat takes integer rubles
    price_stars: int

    @property
    def rub(self) -> Money:
        return Money.rub(self.price_rub)

    @property
    def stars(self) -> Money:
        return Money.stars(self.price_stars)

    def price(self, currency: str) -> Money:
        """The price in what a provider charges: rubles, or Stars."""
        if currency == "XTR":
            return self.stars
        if currency == "RUB":
            return self.rub
        raise ValueError(f"tariffs have no price in {currency}")

    @property
    def months(self) -> int:
        digits = self.code.rstrip("m")
        return int(digits) if digits.isdigit() else max(1, round(self.days / 30))


def parse_tariffs(spec: str) -> tuple[Tariff, ...]:
    """Read ``code:days:rubles:stars`` items separated by commas.

    Raises ValueError with a message fit for the one-line configuration error.
    """
    tariffs: list[Tariff] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 4:
            raise ValueError(f"item {item!r} must be code:days:rubles:stars")
        code, *numbers = parts
        if not _CODE.match(code):
            raise ValueError(f"tariff code {code!r} must be 1-8 lowercase letters or digits")
        try:
            days, rub, stars = (int(n) for n in numbers)
        except ValueError:
            raise ValueError(f"item {item!r}: days, rubles and stars must be integers") from None
        if days <= 0 or rub <= 0 or stars <= 0:
            raise ValueError(f"item {item!r}: days, rubles and stars must be positive")
        if any(t.code == code for t in tariffs):
            raise ValueError(f"tariff code {code!r} appears twice")
        tariffs.append(Tariff(code, days, rub, stars))
    if not tariffs:
        raise ValueError("at least one tariff is required")
    return tuple(tariffs)
