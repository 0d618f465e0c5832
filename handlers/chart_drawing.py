"""Drawing the trend chart with matplotlib: alliance with the client's usual band and the
cutoff, wellbeing below it, missed check-ins marked. Runs in the chart worker process only
(handlers.charts), so the bot's own process never loads matplotlib."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from store.history import Point, Trend

LAST = 12


def render(trend: Trend) -> bytes:
    points = list(trend.points)[-LAST:]
    figure: Figure = plt.figure(figsize=(6.4, 4.2), dpi=110)
    try:
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        times = [p.at for p in points]
        _alliance(top, trend, points)
        _wellbeing(bottom, trend, points)
        for axis in (top, bottom):
            for point in points:
                if point.missed:
                    axis.axvline(point.at, color="#999999", linestyle=":", linewidth=1)
        if times:
            bottom.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))  # type: ignore[no-untyped-call]
        figure.autofmt_xdate()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def _alliance(axis: Axes, trend: Trend, points: list[Point]) -> None:
    scored = [(p.at, p.alliance) for p in points if p.alliance is not None]
    if trend.baseline is not None and trend.band is not None:
        axis.axhspan(
            trend.baseline - trend.band,
            trend.baseline + trend.band,
            color="#cfe3f7",
            label="usual range",
        )
    if trend.cutoff is not None:
        axis.axhline(trend.cutoff, color="#c0392b", linestyle="--", linewidth=1, label="cutoff")
    if scored:
        axis.plot(*zip(*scored, strict=True), marker="o", color="#1f4e79", label="alliance")
    missed = [p.at for p in points if p.missed]
    if missed:
        floor = [trend.alliance_max * 0.02] * len(missed)
        axis.plot(missed, floor, "x", color="#777777", label="missed")  # type: ignore[arg-type]
    axis.set_ylim(0, trend.alliance_max * 1.05)
    axis.set_ylabel(f"Alliance (0-{trend.alliance_max:g})")
    axis.legend(loc="lower left", fontsize=7)
    axis.grid(alpha=0.3)


def _wellbeing(axis: Axes, trend: Trend, points: list[Point]) -> None:
    scored = [(p.at, p.wellbeing) for p in points if p.wellbeing is not None]
    if trend.wellbeing_cutoff is not None:
        axis.axhline(trend.wellbeing_cutoff, color="#c0392b", linestyle="--", linewidth=1)
    if scored:
        axis.plot(*zip(*scored, strict=True), marker="s", color="#2e7d32")
    else:
        axis.text(
            0.5,
            0.5,
            "no wellbeing check-ins",
            ha="center",
            va="center",
            transform=axis.transAxes,
            color="#777777",
        )
    axis.set_ylim(0, 105)
    axis.set_ylabel("Wellbeing (%)")
    axis.grid(alpha=0.3)
