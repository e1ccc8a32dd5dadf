"""Money as integer minor units with a currency: never floats."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Digits after the point for each currency we handle. Stars (XTR) are indivisible.
# Amounts are bounded before any arithmetic: "1e999999" is short to write and costly to use.
MAX_TEXT = 40
MAX_MAJOR_DIGITS = 15  # up to 10^15 major units; far beyond any price
EXPONENTS: dict[str, int] = {"RUB": 2, "XTR": 0}
SYMBOLS: dict[str, str] = {"RUB": "₽", "XTR": "⭐"}


class MoneyError(ValueError):
    """A value that cannot be read as an amount of money."""


@dataclass(frozen=True, order=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if self.currency not in EXPONENTS:
            raise MoneyError(f"unsupported currency {self.currency!r}")
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise MoneyError("minor units must be an int")

    @classmethod
    def rub(cls, rubles: int) -> Money:
        return cls(rubles * 100, "RUB")

    @classmethod
    def stars(cls, stars: int) -> Money:
        return cls(stars, "XTR")

    @classmethod
    def parse(cls, value: object, currency: str) -> Money:
        """Read a major-unit amount (``"100"``, ``100``, ``"99.50"``) exactly.

        Floats are refused outright, and so are amounts with more digits than the
        currency has: a provider that reports ``100.001`` RUB is not rounded.
        """
        if isinstance(value, bool) or isinstance(value, float):
            raise MoneyError(f"amount must not be a float: {value!r}")
        text = str(value).strip()
        if len(text) > MAX_TEXT:
            raise MoneyError(f"not an amount: {text[:MAX_TEXT]!r}…")
        try:
            dec = Decimal(text)
        except (InvalidOperation, ValueError) as exc:
            raise MoneyError(f"not an amount: {value!r}") from exc
        if not dec.is_finite() or dec < 0 or dec.adjusted() >= MAX_MAJOR_DIGITS:
            raise MoneyError(f"not an amount: {value!r}")
        exp = EXPONENTS.get(currency)
        if exp is None:
            raise MoneyError(f"unsupported currency {currency!r}")
        scaled = dec.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"too many decimal places for {currency}: {value!r}")
        return cls(int(scaled), currency)

    @property
    def major(self) -> Decimal:
        """The amount in major units, exact."""
        return Decimal(self.minor).scaleb(-EXPONENTS[self.currency])

    def major_str(self) -> str:
        """``100`` for whole amounts, ``99.50`` otherwise: how providers want it."""
        exp = EXPONENTS[self.currency]
        if self.minor % (10**exp) == 0:
            return str(self.minor // (10**exp))
        return f"{self.major:.{exp}f}"

    def whole_major(self) -> int:
        """The amount in whole major units; refuses fractions (1Plat takes integer rubles)."""
        exp = EXPONENTS[self.currency]
        if self.minor % (10**exp):
            raise MoneyError(f"{self.major_str()} {self.currency} is not a whole amount")
        return int(self.minor // (10**exp))

    def __str__(self) -> str:
        return f"{self.major_str()} {SYMBOLS[self.currency]}"
