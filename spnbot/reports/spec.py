"""What a chart shows, apart from how it is drawn: a title, the days, and panels of values.

Kept free of matplotlib so the bot imports it at no cost; reports/charts.py draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

Number = int | Decimal


@dataclass(frozen=True)
class Bars:
    """Stacked bars: one stack per day, one segment per series (e.g. per provider)."""

    title: str
    series: Mapping[str, Sequence[Number]]
    money: bool = False  # amounts: thousands separated, a legend even for one series


@dataclass(frozen=True)
class Line:
    title: str
    values: Sequence[Number]


Panel = Bars | Line


@dataclass(frozen=True)
class ChartSpec:
    title: str
    days: Sequence[date]
    panels: Sequence[Panel] = field(default_factory=tuple)
