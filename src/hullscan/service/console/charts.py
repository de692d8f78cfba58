"""The dashboard's charts as geometry for inline SVG: the server computes every coordinate, the templates draw
rectangles, lines and text (escaped like any other value), and the stylesheet colours them. No script, no library.

Each chart also keeps its numbers, so the template can give screen readers the same data as a table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 x 10^n at or above `value` (at least 1): a round top for an axis."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power)
    return int(10 * power)


# -- stacked horizontal bars (images by worst severity, per namespace) --------------------------------------------


@dataclass(frozen=True)
class Segment:
    category: str
    x: float
    width: float
    count: int


@dataclass(frozen=True)
class StackedRow:
    label: str
    y: float
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class StackedBars:
    width: int
    height: int
    label_width: int
    bar_height: int
    rows: list[StackedRow]
    categories: list[str]
    scale_max: int


def stacked_bars(rows: Sequence[tuple[str, dict[str, int]]], categories: Sequence[str], *, width: int = 900,
                 label_width: int = 220, row_height: int = 28, bar_height: int = 18) -> StackedBars:
    """One bar per (label, counts), its segments in `categories` order, lengths to one scale so bars compare."""
    scale_max = nice_ceiling(max((sum(c.get(k, 0) for k in categories) for _, c in rows), default=0))
    span = width - label_width - 48  # room for the total after each bar
    out: list[StackedRow] = []
    for i, (label, counts) in enumerate(rows):
        x = float(label_width)
        segments = []
        for category in categories:
            n = counts.get(category, 0)
            if n <= 0:
                continue
            w = span * n / scale_max
            segments.append(Segment(category, round(x, 2), round(w, 2), n))
            x += w
        out.append(StackedRow(label, i * row_height + (row_height - bar_height) / 2, sum(counts.get(k, 0)
                                                                                      for k in categories), segments))
    return StackedBars(width, max(len(rows), 1) * row_height, label_width, bar_height, out, list(categories),
                       scale_max)


# -- lines over days (open critical and high findings) ------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    name: str
    css: str
    values: list[int]
    points: str  # "x,y x,y ..." for <polyline points>


@dataclass(frozen=True)
class Tick:
    position: float
    label: str
    anchor: str = "middle"  # SVG text-anchor: the first and last x labels stay inside the chart


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    series: list[Series]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    labels: list[str] = field(default_factory=list)  # one per x position (the data table's rows)


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]], *, width: int = 560,
               height: int = 220, left: int = 48, top: int = 12, right: int = 16, bottom: int = 28) -> LineChart:
    """Lines over evenly spaced x positions (days); y from 0 to a round maximum with three ticks."""
    top_value = nice_ceiling(max((v for _, _, values in series for v in values), default=0))
    inner_w, inner_h = width - left - right, height - top - bottom
    n = len(labels)

    def x_of(i: int) -> float:
        return left + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    def y_of(v: float) -> float:
        return top + inner_h - inner_h * v / top_value

    lines = [Series(name, css, list(values), " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(values)))
             for name, css, values in series]
    y_ticks = [Tick(round(y_of(v), 1), str(v)) for v in sorted({0, top_value // 2 if top_value > 1 else 0,
                                                                 top_value})]
    picks = sorted({0, n // 2, n - 1}) if n > 2 else list(range(n))
    x_ticks = [Tick(round(x_of(i), 1), labels[i], "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1
                    else "middle") for i in picks]
    return LineChart(width, height, left, top, right, bottom, lines, y_ticks, x_ticks, list(labels))


# -- vertical bars (scans by state) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    baseline: float
    bars: list[Bar]


def bar_chart(values: Sequence[tuple[str, int]], *, width: int = 400, height: int = 200, gap: int = 16,
              label_room: int = 24, value_room: int = 18) -> BarChart:
    top_value = nice_ceiling(max((v for _, v in values), default=0))
    n = max(len(values), 1)
    bar_w = (width - gap * (n + 1)) / n
    inner_h = height - label_room - value_room
    baseline = float(height - label_room)
    bars = []
    for i, (label, v) in enumerate(values):
        h = inner_h * v / top_value
        bars.append(Bar(label, v, round(gap + i * (bar_w + gap), 2), round(baseline - h, 2), round(bar_w, 2),
                        round(h, 2)))
    return BarChart(width, height, baseline, bars)
