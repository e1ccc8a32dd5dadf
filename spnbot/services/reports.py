"""The operator's reports: the /stats chart and the CSV exports (bot and command line).

The chart is a list of panels built from one `DailySeries`. To chart a new measure (issue 14's
trials and trial→paid conversion): add its query to store/stats.py, its values to
`DailySeries`, a label to `ChartLabels` and a builder to `PANELS`. Nothing else changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import BinaryIO

from spnbot.domain.expiry import utcnow
from spnbot.domain.money import EXPONENTS
from spnbot.reports.csv_export import (
    CUSTOMER_COLUMNS,
    PAYMENT_COLUMNS,
    CsvSink,
    amount_text,
    safe_text,
    utc_text,
)
from spnbot.reports.daily import DailySeries, active_counts, revenue_table
from spnbot.reports.spec import Bars, ChartSpec, Line, Panel
from spnbot.store import exports as exports_store
from spnbot.store import stats as stats_store
from spnbot.store.db import Database

MAX_DAYS = 365
EXPORT_PAGE = 1000
OPERATOR_UTC_OFFSET = 3  # Moscow, like every other "today" the operator sees


@dataclass(frozen=True)
class ChartLabels:
    """Texts on the chart, in the admin's language (the bot layer fills them in)."""

    title: str
    revenue_rub: str
    revenue_stars: str
    payers: str
    active: str


def _major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-EXPONENTS[currency])


def _revenue_rub(series: DailySeries, labels: ChartLabels) -> Panel | None:
    rub = series.revenue.get("RUB", {})
    amounts = {p: [_major(v, "RUB") for v in values] for p, values in rub.items()}
    return Bars(labels.revenue_rub, amounts, money=True)


def _revenue_stars(series: DailySeries, labels: ChartLabels) -> Panel | None:
    stars = series.revenue.get("XTR", {})
    if not any(any(values) for values in stars.values()):
        return None  # a shop without Stars sales gets no empty Stars panel
    return Bars(labels.revenue_stars, {p: list(v) for p, v in stars.items()}, money=True)


def _payers(series: DailySeries, labels: ChartLabels) -> Panel | None:
    return Bars(labels.payers, {labels.payers: list(series.payers)})


def _active(series: DailySeries, labels: ChartLabels) -> Panel | None:
    return Line(labels.active, list(series.active))


# The chart's panels, top to bottom; a builder returns None to leave its panel out.
PANELS: tuple[Callable[[DailySeries, ChartLabels], Panel | None], ...] = (
    _revenue_rub,
    _revenue_stars,
    _payers,
    _active,
)


class ReportService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime] = utcnow,
        utc_offset_hours: int = OPERATOR_UTC_OFFSET,
    ) -> None:
        self._db = db
        self._clock = clock
        self._offset = utc_offset_hours
        self._zone = timezone(timedelta(hours=utc_offset_hours))

    def window(self, days: int, now: datetime) -> tuple[list[date], datetime]:
        """The last ``days`` local days up to today, and the UTC instant the first one starts."""
        if not 1 <= days <= MAX_DAYS:
            raise ValueError(f"days must be 1..{MAX_DAYS}, got {days}")
        today = now.astimezone(self._zone).date()
        first = today - timedelta(days=days - 1)
        since = datetime.combine(first, time(0), self._zone).astimezone(now.tzinfo)
        return [first + timedelta(days=i) for i in range(days)], since

    async def ever_paid(self) -> bool:
        async with self._db.transaction() as session:
            return await stats_store.ever_paid(session)

    async def daily(self, days: int, now: datetime | None = None) -> DailySeries:
        now = now or self._clock()
        day_list, since = self.window(days, now)
        # Active subscriptions are counted at the end of each day; today's at this moment.
        moments = [
            min(now, datetime.combine(d + timedelta(days=1), time(0), self._zone))
            - timedelta(microseconds=1)
            for d in day_list
        ]
        moments[-1] = now
        async with self._db.transaction() as session:
            revenue = await stats_store.revenue_by_day(session, since, now, self._offset)
            payers = await stats_store.payers_by_day(session, since, now, self._offset)
            spans = await stats_store.subscription_spans(session, since, now)
        return DailySeries(
            days=tuple(day_list),
            revenue=revenue_table(day_list, revenue),
            payers=tuple(payers.get(d, 0) for d in day_list),
            active=active_counts(spans, moments),
        )

    async def chart(self, series: DailySeries, labels: ChartLabels) -> bytes:
        """The PNG; drawn in a worker thread so the bot keeps answering meanwhile."""
        from spnbot.reports.charts import render_png  # matplotlib loads on the first chart

        panels = [p for build in PANELS if (p := build(series, labels)) is not None]
        spec = ChartSpec(labels.title, series.days, panels)
        return await asyncio.to_thread(render_png, spec)

    async def export_payments(self, out: BinaryIO, first: date | None, last: date | None) -> int:
        """Payments created on UTC days first..last (either end open) as CSV; returns the rows."""
        if first is not None and last is not None and first > last:
            raise ValueError(f"the range ends ({last}) before it starts ({first})")
        since = datetime.combine(first, time(0), UTC) if first else None
        until = datetime.combine(last + timedelta(days=1), time(0), UTC) if last else None
        sink = CsvSink(out, PAYMENT_COLUMNS)
        after = 0
        async with self._db.transaction() as session:  # one snapshot for the whole file
            while page := await exports_store.payments_page(
                session, since=since, until=until, after_id=after, limit=EXPORT_PAGE
            ):
                sink.write(
                    (
                        str(r.id),
                        r.public_id,
                        safe_text(r.external_id),
                        str(r.user_id),
                        safe_text(r.username),
                        safe_text(r.tariff_code),
                        str(r.days),
                        amount_text(int(r.amount_minor), r.currency),
                        r.currency,
                        r.provider,
                        safe_text(r.method),
                        r.status,
                        utc_text(r.created_at),
                        utc_text(r.paid_at),
                        safe_text(r.paid_via),
                    )
                    for r in page
                )
                after = page[-1].id
        sink.close()
        return sink.rows

    async def export_customers(self, out: BinaryIO, now: datetime | None = None) -> int:
        """Every customer with their subscription and what they paid, as CSV; returns the rows."""
        now = now or self._clock()
        sink = CsvSink(out, CUSTOMER_COLUMNS)
        after = -(2**63)
        async with self._db.transaction() as session:
            while page := await exports_store.customers_page(
                session, after_id=after, limit=EXPORT_PAGE
            ):
                sink.write(
                    (
                        str(tg_id),
                        safe_text(username),
                        safe_text(first_name),
                        safe_text(language),
                        utc_text(created),
                        utc_text(terms),
                        utc_text(expires),
                        "yes" if expires is not None and expires > now else "no",
                        "" if referrer is None else str(referrer),
                        utc_text(blocked),
                        str(int(count)),
                        amount_text(int(rub), "RUB"),
                        amount_text(int(xtr), "XTR"),
                    )
                    for (
                        tg_id,
                        username,
                        first_name,
                        language,
                        created,
                        terms,
                        expires,
                        referrer,
                        blocked,
                        count,
                        rub,
                        xtr,
                    ) in page
                )
                after = page[-1][0]
        sink.close()
        return sink.rows
