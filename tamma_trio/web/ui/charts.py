"""Bar charts as plain numbers for an inline SVG: the server draws, the browser only shows.

No charting script is sent (the Content-Security-Policy allows none from elsewhere, and none is
needed): each bar is a pair of rectangles, completed below failed, scaled to the tallest bar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from tamma_trio.models import ThroughputBucket

WIDTH = 240
HEIGHT = 60
_GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    completed_y: float
    completed_height: float
    failed_y: float
    failed_height: float
    label: str  # the tooltip: when, and how many of each


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    completed: int
    failed: int
    peak: int
    width: int = WIDTH
    height: int = HEIGHT


def throughput_chart(
    title: str,
    buckets: Sequence[ThroughputBucket],
    since: float,
    bucket_seconds: int,
    count: int,
) -> BarChart:
    """``count`` bars from wall time ``since``; buckets the store left out are empty bars."""
    by_start = {int(b.start.timestamp()): b for b in buckets}
    slots = [by_start.get(int(since) + i * bucket_seconds) for i in range(count)]
    peak = max((b.completed + b.failed for b in slots if b is not None), default=0)
    step = WIDTH / count
    bars = tuple(
        _bar(i * step, step - _GAP, slot, peak, since + i * bucket_seconds)
        for i, slot in enumerate(slots)
    )
    return BarChart(
        title=title,
        bars=bars,
        completed=sum(b.completed for b in buckets),
        failed=sum(b.failed for b in buckets),
        peak=peak,
    )


def _bar(x: float, width: float, slot: ThroughputBucket | None, peak: int, start: float) -> Bar:
    completed = slot.completed if slot else 0
    failed = slot.failed if slot else 0
    scale = HEIGHT / peak if peak else 0.0
    completed_height = completed * scale
    failed_height = failed * scale
    when = dt.datetime.fromtimestamp(start, dt.UTC).strftime("%H:%M")
    return Bar(
        x=round(x, 2),
        width=round(max(width, 1.0), 2),
        completed_y=round(HEIGHT - completed_height, 2),
        completed_height=round(completed_height, 2),
        failed_y=round(HEIGHT - completed_height - failed_height, 2),
        failed_height=round(failed_height, 2),
        label=f"{when} UTC: {completed} completed, {failed} failed",
    )
