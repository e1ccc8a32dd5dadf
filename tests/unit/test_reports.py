"""The arithmetic and drawing behind /stats, on their own."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from PIL import Image

from spnbot.reports.charts import render_png
from spnbot.reports.daily import DailySeries, active_counts, revenue_table
from spnbot.reports.spec import Bars, ChartSpec, Line
from spnbot.services.reports import PANELS, ChartLabels, ReportService
from spnbot.store.stats import DayRevenue, Span

T0 = datetime(2026, 5, 1, tzinfo=UTC)
LABELS = ChartLabels("t", "rub", "stars", "payers", "active")


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def test_active_counts_merge_each_users_grants() -> None:
    spans = [
        Span(1, at(0), at(10)),
        Span(1, at(5), at(20)),  # extends the running period: still one subscription
        Span(1, at(30), at(31)),  # lapsed, then came back
        Span(2, at(2), at(3)),
    ]
    moments = [at(d) for d in (-1, 0, 2.5, 9, 19.9, 20, 25, 30.5, 31)]
    assert active_counts(spans, moments) == (0, 1, 2, 1, 1, 0, 0, 1, 0)


def test_revenue_table_fills_the_days_without_sales() -> None:
    days = [date(2026, 5, d) for d in (1, 2, 3)]
    rows = [
        DayRevenue(days[0], "oneplat", "RUB", 1, 10_000),
        DayRevenue(days[2], "oneplat", "RUB", 2, 24_900),
        DayRevenue(days[2], "stars", "XTR", 1, 50),
        DayRevenue(date(2026, 4, 30), "oneplat", "RUB", 1, 99),  # outside: ignored
    ]
    assert revenue_table(days, rows) == {
        "RUB": {"oneplat": (10_000, 0, 24_900)},
        "XTR": {"stars": (0, 0, 50)},
    }


def _series(revenue: dict[str, dict[str, tuple[int, ...]]]) -> DailySeries:
    days = (date(2026, 5, 1), date(2026, 5, 2))
    return DailySeries(days, revenue, payers=(1, 0), active=(1, 1))


def test_stars_get_a_panel_only_when_sold() -> None:
    rub_only = _series({"RUB": {"oneplat": (10_000, 0)}})
    panels = [p for build in PANELS if (p := build(rub_only, LABELS)) is not None]
    assert [p.title for p in panels] == ["rub", "payers", "active"]
    with_stars = _series({"RUB": {"oneplat": (10_000, 0)}, "XTR": {"stars": (0, 50)}})
    panels = [p for build in PANELS if (p := build(with_stars, LABELS)) is not None]
    assert [p.title for p in panels] == ["rub", "stars", "payers", "active"]
    rub = panels[0]
    assert isinstance(rub, Bars) and [str(v) for v in rub.series["oneplat"]] == ["100.00", "0.00"]


def test_window_is_whole_local_days_and_bounded() -> None:
    reports = ReportService(db=None)  # type: ignore[arg-type]  # window() needs no database
    now = datetime(2026, 5, 10, 22, 30, tzinfo=UTC)  # 01:30 on 11 May in Moscow
    days, since = reports.window(3, now)
    assert days == [date(2026, 5, 9), date(2026, 5, 10), date(2026, 5, 11)]
    assert since == datetime(2026, 5, 8, 21, 0, tzinfo=UTC)  # 9 May 00:00 MSK
    for bad in (0, 366, -1):
        with pytest.raises(ValueError, match="days must be"):
            reports.window(bad, now)


def test_an_all_zero_chart_still_draws() -> None:
    days = [date(2026, 5, 1) + timedelta(days=i) for i in range(30)]
    spec = ChartSpec(
        "Пусто", days, [Bars("Выручка, ₽", {}, money=True), Line("Активные", [0] * 30)]
    )
    image = Image.open(io.BytesIO(render_png(spec)))
    assert image.size[0] == 1200
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 24) or []) > 10  # axes and text
    with pytest.raises(ValueError, match="at least one panel"):
        render_png(ChartSpec("none", days, []))
