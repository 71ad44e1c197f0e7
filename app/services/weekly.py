"""The 首页's chart of certificates issued per week (#12): China-time weeks (Monday first)
and the bars of its server-drawn SVG. Pure: no database (bench/floor.py draws it too)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from app import clock

CHART_WEEKS = 12
# The chart's drawing box (SVG user units; the CSS scales it to the card's width).
CHART_W, CHART_H, CHART_TOP, CHART_BOTTOM = 360, 150, 16, 22
# Room on each side for the first and last weeks' labels, centred under their bars: on a
# phone the CSS draws them larger and the last one ran past the box.
CHART_PAD = 16


def chart_weeks(today: date | None = None) -> list[date]:
    """The Mondays (China time) of the last CHART_WEEKS weeks, this week last."""
    day = today or clock.today()
    monday = day - timedelta(days=day.weekday())
    return [monday - timedelta(weeks=k) for k in range(CHART_WEEKS - 1, -1, -1)]


def week_counts(stamps: Iterable[datetime], weeks: list[date]) -> list[int]:
    """How many of ``stamps`` (aware instants) fall in each China-time week of ``weeks``."""
    counts = [0] * len(weeks)
    first = weeks[0]
    for stamp in stamps:
        day = stamp.astimezone(clock.TZ).date()
        k = (day - first).days // 7
        if 0 <= k < len(weeks):
            counts[k] += 1
    return counts


def chart(weeks: list[date], counts: list[int]) -> dict[str, Any]:
    """The bars of the SVG (template home.html): positions in the drawing box."""
    top = max(counts) if any(counts) else 1
    plot = CHART_H - CHART_TOP - CHART_BOTTOM
    step = CHART_W / len(weeks)
    bars = []
    for k, (week, n) in enumerate(zip(weeks, counts, strict=True)):
        height = round(plot * n / top, 1)
        bars.append(
            {
                "week": week,
                "label": f"{week:%m-%d}",
                "n": n,
                "x": round(k * step + step * 0.2, 1),
                "w": round(step * 0.6, 1),
                "y": round(CHART_TOP + plot - height, 1),
                "h": height,
                "cx": round(k * step + step / 2, 1),
            }
        )
    return {
        "bars": bars,
        "width": CHART_W,
        "pad": CHART_PAD,
        "height": CHART_H,
        "base": CHART_H - CHART_BOTTOM,
        "label_y": CHART_H - 6,
        "total": sum(counts),
        "first": weeks[0],
        "last": weeks[-1] + timedelta(days=6),
    }
