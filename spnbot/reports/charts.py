"""A PNG of day-by-day panels for the operator's phone: matplotlib's Agg backend, no display.

Callers describe the chart (reports/spec.py: a title, the days, panels of stacked bars or a
line); this module only draws it. Only the object API is used (no pyplot), so no figure
outlives its render.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # before anything draws: the server has no display

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from spnbot.reports.spec import Bars, ChartSpec, Line

WIDTH_PX = 1200
DPI = 100
PANEL_HEIGHT_IN = 3.6
TITLE_HEIGHT_IN = 0.9
FONT = "DejaVu Sans"  # ships with matplotlib and has Cyrillic and ₽
MAX_DAY_LABELS = 8
# Fixed colours per provider, so a provider keeps its colour from one day's chart to the next.
COLOURS = {
    "oneplat": "#1f77b4",
    "cryptobot": "#ff7f0e",
    "yookassa": "#7b3fb5",
    "stars": "#e3a600",
}
SPARE_COLOURS = ("#2ca02c", "#d62728", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
LINE_COLOUR = "#2a9d8f"

# matplotlib's rcParams are process-wide; renders take turns so fonts never mix between them.
_RENDER_LOCK = threading.Lock()


def colour(name: str, position: int) -> str:
    return COLOURS.get(name, SPARE_COLOURS[position % len(SPARE_COLOURS)])


def _amount(value: float, _: object = None) -> str:
    return f"{value:,.0f}".replace(",", " ")  # 12 345: a thin gap reads better than a comma


def _bars(ax: Axes, x: Sequence[int], panel: Bars) -> None:
    bottom = [0.0] * len(x)
    for position, (name, values) in enumerate(panel.series.items()):
        # Heights are pixels: the exact amounts stay in the caption and the exports.
        heights = [float(v) for v in values]
        ax.bar(x, heights, width=0.8, bottom=bottom, label=name, color=colour(name, position))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    if panel.series and (len(panel.series) > 1 or panel.money):
        ax.legend(loc="upper left", frameon=False, ncols=min(4, len(panel.series)))
    if panel.money:
        ax.yaxis.set_major_formatter(FuncFormatter(_amount))
    ax.set_ylim(bottom=0, top=max([*bottom, 1.0]) * 1.25)  # room for the legend


def _line(ax: Axes, x: Sequence[int], panel: Line) -> None:
    values = [float(v) for v in panel.values]
    ax.plot(x, values, color=LINE_COLOUR, linewidth=3, marker="o", markersize=4)
    ax.fill_between(x, values, color=LINE_COLOUR, alpha=0.15)
    ax.set_ylim(bottom=0, top=max([*values, 1.0]) * 1.15)


def render_png(spec: ChartSpec) -> bytes:
    if not spec.panels:
        raise ValueError("a chart needs at least one panel")
    with (
        _RENDER_LOCK,
        matplotlib.rc_context(
            {"font.family": FONT, "font.size": 15, "axes.titlesize": 19, "legend.fontsize": 14}
        ),
    ):
        height = TITLE_HEIGHT_IN + PANEL_HEIGHT_IN * len(spec.panels)
        fig = Figure(figsize=(WIDTH_PX / DPI, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle(spec.title, fontsize=22, fontweight="bold")
        axes = fig.subplots(len(spec.panels), 1, sharex=True, squeeze=False)[:, 0]
        x = list(range(len(spec.days)))  # one slot per day; labels below say which
        for ax, panel in zip(axes, spec.panels, strict=True):
            ax.set_title(panel.title, loc="left", fontweight="bold")
            if isinstance(panel, Bars):
                _bars(ax, x, panel)
            else:
                _line(ax, x, panel)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
            ax.grid(axis="y", alpha=0.3)
            ax.spines[["top", "right"]].set_visible(False)
        # A few day labels, always including the last day (today).
        step = max(1, math.ceil(len(x) / MAX_DAY_LABELS))
        ticks = x[::-1][::step][::-1]
        axes[-1].set_xticks(ticks, [spec.days[i].strftime("%d.%m") for i in ticks])
        axes[-1].set_xlim(-0.6, len(x) - 0.4)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
