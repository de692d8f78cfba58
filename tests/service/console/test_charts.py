"""The dashboard's chart geometry: bars to one scale, lines inside their frame, round axis tops."""

from __future__ import annotations

from hullscan.service.console.charts import bar_chart, line_chart, nice_ceiling, stacked_bars


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 2, 3, 7, 10, 11, 99, 101, 4999)] == [1, 1, 2, 5, 10, 10, 20, 100, 200, 5000]


def test_stacked_bars_share_one_scale_and_skip_empty_segments() -> None:
    chart = stacked_bars([("reg / a", {"CRITICAL": 2, "LOW": 0, "UNSCANNED": 3}), ("reg / b", {"LOW": 10})],
                         ["CRITICAL", "LOW", "UNSCANNED"], width=700, label_width=200)
    a, b = chart.rows
    assert chart.scale_max == 10 and (a.total, b.total) == (5, 10)
    assert [s.category for s in a.segments] == ["CRITICAL", "UNSCANNED"]  # LOW: 0 draws nothing
    span = 700 - 200 - 48
    assert b.segments[0].width == span  # the largest total fills the span
    assert a.segments[0].x == 200 and a.segments[1].x == 200 + a.segments[0].width  # end to end, in order
    assert abs(sum(s.width for s in a.segments) - span / 2) < 0.05  # half the total, half the length
    assert a.y < b.y


def test_line_chart_points_stay_in_the_frame() -> None:
    chart = line_chart(["d1", "d2", "d3", "d4"], [("Critical", "critical", [0, 3, 7, 2])], width=400, height=200,
                       left=40, top=10, right=10, bottom=30)
    points = [tuple(map(float, p.split(","))) for p in chart.series[0].points.split()]
    assert [x for x, _ in points] == [40.0, 156.7, 273.3, 390.0]
    ys = [y for _, y in points]
    assert ys[0] == 170.0  # 0 sits on the bottom of the frame
    assert ys[2] == 58.0  # 7 of a top of 10: 70% (112) up a 160-high frame from 170
    assert [t.label for t in chart.y_ticks] == ["0", "5", "10"]
    assert [(t.label, t.anchor) for t in chart.x_ticks] == [("d1", "start"), ("d3", "middle"), ("d4", "end")]


def test_bar_chart_heights_are_proportional() -> None:
    chart = bar_chart([("queued", 0), ("running", 5), ("succeeded", 10)], width=300, height=200)
    heights = [b.height for b in chart.bars]
    assert heights[0] == 0 and heights[2] == 2 * heights[1]
    assert all(b.y + b.height == chart.baseline for b in chart.bars)
