"""The numbers behind the /stats chart, one value per day: pure arithmetic, no I/O."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby

from spnbot.store.stats import DayRevenue, Span


@dataclass(frozen=True)
class DailySeries:
    days: tuple[date, ...]
    # currency -> provider -> minor units per day; rubles and Stars never share a bar.
    revenue: Mapping[str, Mapping[str, tuple[int, ...]]]
    payers: tuple[int, ...]  # distinct paying customers per day
    active: tuple[int, ...]  # active subscriptions at the end of each day (now, for today)

    def total(self, currency: str) -> int:
        return sum(sum(v) for v in self.revenue.get(currency, {}).values())


def revenue_table(
    days: Sequence[date], rows: Iterable[DayRevenue]
) -> dict[str, dict[str, tuple[int, ...]]]:
    index = {d: i for i, d in enumerate(days)}
    table: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        if row.day not in index:
            continue
        per_day = table.setdefault(row.currency, {}).setdefault(row.provider, [0] * len(days))
        per_day[index[row.day]] += row.amount_minor
    return {
        currency: {provider: tuple(values) for provider, values in sorted(providers.items())}
        for currency, providers in sorted(table.items())
    }


def active_counts(spans: Iterable[Span], moments: Sequence[datetime]) -> tuple[int, ...]:
    """How many users were active at each moment.

    Each user's grants merge into disjoint periods [start, end); at moment m the active count
    is (periods started by m) - (periods ended by m). ``spans`` come sorted by user, start.
    """
    starts: list[datetime] = []
    ends: list[datetime] = []
    for _, grants in groupby(spans, key=lambda s: s.user_id):
        begin: datetime | None = None
        end: datetime | None = None
        for span in grants:
            if end is not None and span.start <= end:
                end = max(end, span.end)
                continue
            if begin is not None and end is not None:
                starts.append(begin)
                ends.append(end)
            begin, end = span.start, span.end
        if begin is not None and end is not None:
            starts.append(begin)
            ends.append(end)
    starts.sort()
    ends.sort()
    return tuple(bisect_right(starts, m) - bisect_right(ends, m) for m in moments)
