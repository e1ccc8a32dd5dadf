"""Percentiles, result records and the printed table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``; NaN for an empty list."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds of a list of durations in seconds."""
    values = [s * 1000 for s in seconds]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
        "mean": round(sum(values) / len(values), 2),
    }


@dataclass
class Row:
    """One line of the table: a metric of the app next to the same metric of its floor."""

    scenario: str
    db: str
    metric: str
    spn: float
    floor: float
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        """How many times worse than the floor (1.0 = as good as the floor)."""
        if self.higher_is_better:
            return self.floor / self.spn if self.spn else math.inf
        return self.spn / self.floor if self.floor else math.inf


@dataclass
class Target:
    name: str
    value: float
    limit: float
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.value <= self.limit

    def line(self) -> str:
        verdict = "PASS" if self.met else "MISS"
        limit = f"{self.limit:g}{self.unit}"
        return f"{verdict}  {self.name}: {_num(self.value)}{self.unit} (target ≤ {limit})"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def table(self) -> str:
        header = ("scenario", "db", "metric", "spn", "floor", "ratio")
        lines = [
            (r.scenario, r.db, r.metric, _num(r.spn), _num(r.floor), f"{r.ratio:.2f}")
            for r in self.rows
        ]
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
        right = {3, 4, 5}

        def fmt(cells: Sequence[str]) -> str:
            return " | ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        out = [fmt(header), "-+-".join("-" * w for w in widths)]
        out += [fmt(line) for line in lines]
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": [
                {
                    "scenario": r.scenario,
                    "db": r.db,
                    "metric": r.metric,
                    "spn": r.spn,
                    "floor": r.floor,
                    "ratio": round(r.ratio, 3),
                }
                for r in self.rows
            ],
            "targets": [
                {"name": t.name, "value": t.value, "limit": t.limit, "met": t.met}
                for t in self.targets
            ],
            "failures": self.failures,
        }


def _num(value: float) -> str:
    if math.isnan(value):
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"
