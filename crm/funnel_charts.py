"""Geometry of the funnel report's charts, rendered as inline SVG by templates/crm/funnel/.

Server-side so the page needs no JavaScript (and no inline <script>, which the CSP forbids);
the viewBox scales to the width of a phone. Numbers are formatted here, not by the template
engine, whose localisation could put a decimal comma into SVG coordinates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _

from crm.funnel import STAGES, Funnel, TeamMedian
from crm.models import FunnelSnapshot

# One colour per stage, each at least 3:1 against white (WCAG graphics contrast).
STAGE_COLOURS: dict[int, str] = {
    0: "#546e7a",
    25: "#1565c0",
    50: "#2e7d32",
    75: "#c75000",
    100: "#6a1b9a",
}

WIDTH = 320
ROW = 28
BAR_HEIGHT = 20
LABEL_RIGHT = 40
BAR_LEFT = 46
BAR_AREA = 214
VALUE_LEFT = BAR_LEFT + BAR_AREA + 4


def _n(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    conversion: int | None
    colour: str
    x: str
    y: str
    width: str
    text_y: str
    median_x: str | None
    median_width: str | None
    median_value: str


@dataclass(frozen=True)
class FunnelChart:
    id: str
    title: str
    description: str
    width: int
    height: int
    bars: list[Bar]
    has_median: bool
    legend_y: str
    label_right: int = LABEL_RIGHT
    value_left: int = VALUE_LEFT
    bar_height: int = BAR_HEIGHT


def funnel_chart(
    funnel: Funnel, *, chart_id: str, title: str, median: TeamMedian | None = None
) -> FunnelChart:
    """Centred bars, one per stage, as wide as the customers at that stage or beyond; with
    `median`, a dashed outline shows the team median's width on each row."""
    widest = max(
        [float(funnel.total), 1.0]
        + ([m.reached or 0.0 for m in median.stages] if median is not None else [])
    )
    bars = []
    centre = BAR_LEFT + BAR_AREA / 2
    for index, figures in enumerate(funnel.stages):
        width = BAR_AREA * figures.reached / widest
        if figures.reached and width < 2:
            width = 2.0
        top = 4 + index * ROW
        median_x = median_width = None
        median_value = ""
        if median is not None and median.stages[index].reached is not None:
            reached = median.stages[index].reached or 0.0
            median_value = f"{reached:g}"
            if reached > 0:
                m_width = max(BAR_AREA * reached / widest, 2.0)
                median_x, median_width = _n(centre - m_width / 2), _n(m_width)
        bars.append(
            Bar(
                label=figures.short_label,
                value=figures.reached,
                conversion=figures.conversion_percent,
                colour=STAGE_COLOURS[figures.stage],
                x=_n(centre - width / 2),
                y=_n(top),
                width=_n(width),
                text_y=_n(top + BAR_HEIGHT / 2 + 4),
                median_x=median_x,
                median_width=median_width,
                median_value=median_value,
            )
        )
    rows_height = 4 + len(STAGES) * ROW
    description = "; ".join(
        f"{bar.label}: {bar.value}"
        + (f" ({bar.conversion}%)" if bar.conversion is not None else "")
        + (
            " · " + _("team median %(value)s") % {"value": bar.median_value}
            if bar.median_value
            else ""
        )
        for bar in bars
    )
    return FunnelChart(
        id=chart_id,
        title=title,
        description=description,
        width=WIDTH,
        height=rows_height + (20 if median is not None else 0),
        bars=bars,
        has_median=median is not None,
        legend_y=_n(rows_height + 12),
    )


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: str
    dots: list[tuple[str, str, int]]
    legend_x: str
    legend_text_x: str


@dataclass(frozen=True)
class TrendChart:
    id: str
    title: str
    description: str
    width: int
    height: int
    lines: list[Line]
    x_labels: list[tuple[str, str, str]]  # (x, text-anchor, text)
    y_max: int
    top: int
    bottom: int
    left: int
    right: int
    legend_y: int
    empty: bool


TREND_HEIGHT = 196
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 34, 312, 12, 140


def trend_chart(
    trend: Sequence[tuple[FunnelSnapshot, Funnel]], *, chart_id: str, title: str
) -> TrendChart:
    """One line per stage over the snapshots: customers at that stage or beyond."""
    y_max = max([figures.reached for _snap, funnel in trend for figures in funnel.stages] + [1])
    count = len(trend)

    def x_at(index: int) -> float:
        if count == 1:
            return (PLOT_LEFT + PLOT_RIGHT) / 2
        return PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * index / (count - 1)

    def y_at(value: int) -> float:
        return PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * value / y_max

    lines = []
    for position, stage in enumerate(STAGES):
        dots = []
        for index, (_snap, funnel) in enumerate(trend):
            value = funnel.stages[position].reached
            dots.append((_n(x_at(index)), _n(y_at(value)), value))
        legend_x = 4 + position * 63
        lines.append(
            Line(
                label=f"{stage}%",
                colour=STAGE_COLOURS[stage],
                points=" ".join(f"{x},{y}" for x, y, _v in dots),
                dots=dots,
                legend_x=_n(legend_x),
                legend_text_x=_n(legend_x + 14),
            )
        )
    x_labels: list[tuple[str, str, str]] = []
    if trend:
        first = timezone.localtime(trend[0][0].taken_at).strftime("%m-%d")
        x_labels.append((_n(x_at(0)), "start" if count > 1 else "middle", first))
        if count > 1:
            last = timezone.localtime(trend[-1][0].taken_at).strftime("%m-%d")
            x_labels.append((_n(x_at(count - 1)), "end", last))
    description = "; ".join(
        timezone.localtime(snap.taken_at).strftime("%Y-%m-%d")
        + ": "
        + ", ".join(f"{f.short_label} {f.reached}" for f in funnel.stages)
        for snap, funnel in trend
    )
    return TrendChart(
        id=chart_id,
        title=title,
        description=description,
        width=WIDTH,
        height=TREND_HEIGHT,
        lines=lines,
        x_labels=x_labels,
        y_max=y_max,
        top=PLOT_TOP,
        bottom=PLOT_BOTTOM,
        left=PLOT_LEFT,
        right=PLOT_RIGHT,
        legend_y=TREND_HEIGHT - 18,
        empty=not trend,
    )
