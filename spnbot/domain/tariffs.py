"""Tariffs: what a customer can buy. Parsed from configuration, never hard-wired in handlers.

Two sources: the ``TARIFFS`` string (code:days:rubles:stars, no limits) and a TOML plans file
(``PLANS_FILE``) whose plans may also carry device, traffic and squad limits.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spnbot.domain.money import Money

# The seed's prices: 1, 3, 6 and 12 months. Stars prices follow roughly 1 ⭐ ≈ 2 ₽.
DEFAULT_TARIFFS = "1m:30:100:50,3m:90:249:125,6m:180:449:225,12m:365:990:495"

_CODE = re.compile(r"^[a-z0-9]{1,8}$")

TRAFFIC_RESETS = ("NO_RESET", "DAY", "WEEK", "MONTH")
GIB = 1024**3


@dataclass(frozen=True)
class PlanLimits:
    """What a plan allows on the panel. Every field None/empty is a plan without limits.

    ``device_limit`` None leaves the panel's device limit as it is; ``traffic_gb`` None is
    unlimited traffic; ``squads`` empty means the shop's default squad.
    """

    device_limit: int | None = None
    traffic_gb: int | None = None
    traffic_reset: str = "NO_RESET"
    squads: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self == PlanLimits()

    @property
    def traffic_bytes(self) -> int:
        """The panel's trafficLimitBytes: 0 is unlimited."""
        return self.traffic_gb * GIB if self.traffic_gb else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "device_limit": self.device_limit,
            "traffic_gb": self.traffic_gb,
            "traffic_reset": self.traffic_reset,
            "squads": list(self.squads),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PlanLimits:
        if not data:
            return cls()
        return cls(
            device_limit=data.get("device_limit"),
            traffic_gb=data.get("traffic_gb"),
            traffic_reset=str(data.get("traffic_reset") or "NO_RESET"),
            squads=tuple(data.get("squads") or ()),
        )


@dataclass(frozen=True)
class Tariff:
    code: str  # "1m"; appears in callback data, so short and plain
    days: int
    price_rub: int  # whole rubles: 1Plat takes integer rubles
    price_stars: int
    limits: PlanLimits = field(default_factory=PlanLimits)

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


class PlanFileError(ValueError):
    """A plans file that cannot be used; the message names the file, the plan and the field."""


_PLAN_FIELDS = {
    "code",
    "days",
    "price_rub",
    "price_stars",
    "device_limit",
    "traffic_gb",
    "traffic_reset",
    "squads",
}


def load_plans(path: Path) -> tuple[Tariff, ...]:
    """Plans from a TOML file of ``[[plan]]`` tables (see docs/CONFIGURATION.md)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise PlanFileError(f"{path}: is not UTF-8 text") from None
    return parse_plans(raw, str(path))


def parse_plans(text: str, source: str) -> tuple[Tariff, ...]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanFileError(f"{source}: is not valid TOML ({exc})") from None
    unknown = sorted(set(document) - {"plan"})
    if unknown:
        raise PlanFileError(f"{source}: unknown key {unknown[0]!r} (plans are [[plan]] tables)")
    items = document.get("plan")
    if not isinstance(items, list) or not items:
        raise PlanFileError(f"{source}: has no [[plan]] tables")
    plans: list[Tariff] = []
    for number, item in enumerate(items, start=1):
        plan = _plan(item, source, number)
        if any(p.code == plan.code for p in plans):
            raise PlanFileError(f"{source}: plan {plan.code!r}: code: appears twice")
        plans.append(plan)
    return tuple(plans)


def _plan(item: Any, source: str, number: int) -> Tariff:
    if not isinstance(item, dict):
        raise PlanFileError(f"{source}: plan #{number}: must be a table")
    code = item.get("code")
    name = f"plan {code!r}" if isinstance(code, str) else f"plan #{number}"

    def bad(field_name: str, reason: str) -> PlanFileError:
        shown = item.get(field_name)
        got = f" (got {shown!r})" if field_name in item else ""
        return PlanFileError(f"{source}: {name}: {field_name}: {reason}{got}")

    extra = sorted(set(item) - _PLAN_FIELDS)
    if extra:
        raise bad(extra[0], f"unknown field (known: {', '.join(sorted(_PLAN_FIELDS))})")
    if not isinstance(code, str) or not _CODE.match(code):
        raise bad("code", "is required: 1-8 lowercase letters or digits")

    def count(field_name: str, *, required: bool) -> int | None:
        value = item.get(field_name)
        if value is None:
            if required:
                raise bad(field_name, "is required")
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise bad(field_name, "must be a positive whole number")
        return value

    days = count("days", required=True)
    rub = count("price_rub", required=True)
    stars = count("price_stars", required=True)
    assert days is not None and rub is not None and stars is not None
    device_limit = count("device_limit", required=False)
    traffic_gb = count("traffic_gb", required=False)
    reset = item.get("traffic_reset", "NO_RESET")
    if reset not in TRAFFIC_RESETS:
        raise bad("traffic_reset", f"must be one of {', '.join(TRAFFIC_RESETS)}")
    if reset != "NO_RESET" and traffic_gb is None:
        raise bad("traffic_reset", "needs traffic_gb (unlimited traffic has nothing to reset)")
    squads = item.get("squads", [])
    if not isinstance(squads, list) or not all(_is_uuid(s) for s in squads):
        raise bad("squads", "must be a list of internal squad UUIDs")
    limits = PlanLimits(device_limit, traffic_gb, reset, tuple(squads))
    return Tariff(code, days, rub, stars, limits)


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
