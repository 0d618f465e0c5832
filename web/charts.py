"""Charts drawn on the server as SVG: no script, nothing from elsewhere, readable by a screen
reader (each chart has a title and a description with its numbers).

The same trend as the Telegram chart (store.history.Trend): the alliance total with the
client's usual range and the cutoff, wellbeing below it, missed check-ins marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from markupsafe import Markup

from store.history import Point, Trend

INK = "#1f4e79"
WELL = "#1b5e20"
CUT = "#b3261e"
BAND = "#d6e6f5"
GRID = "#c8c8c8"
MUTED = "#5f5f5f"


def _fmt(value: float) -> str:
    return f"{value:g}"


def sparkline(values: Sequence[float], top: float, label: str) -> Markup:
    """A small line of the latest totals, with its numbers as the accessible name."""
    width, height, pad = 96, 24, 3
    if not values:
        return Markup('<span class="muted">no answers yet</span>')
    words = ", ".join(_fmt(v) for v in values)
    name = escape(f"{label}: {words} (of {_fmt(top)})")
    if len(values) == 1:
        xs = [width / 2]
    else:
        step = (width - 2 * pad) / (len(values) - 1)
        xs = [pad + i * step for i in range(len(values))]
    ys = [height - pad - (v / top) * (height - 2 * pad) if top else height / 2 for v in values]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    last_x, last_y = xs[-1], ys[-1]
    return Markup(
        f'<svg class="spark" role="img" aria-label="{name}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{name}</title>"
        f'<polyline points="{points}" fill="none" stroke="{INK}" stroke-width="2"/>'
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5" fill="{INK}"/></svg>'
    )


def _x_positions(points: Sequence[Point], left: float, right: float) -> list[float]:
    if len(points) == 1:
        return [(left + right) / 2]
    first, last = points[0].at, points[-1].at
    span = (last - first).total_seconds() or 1.0
    return [left + (p.at - first).total_seconds() / span * (right - left) for p in points]


def _day(at: datetime, zone: str) -> str:
    return f"{at.astimezone(ZoneInfo(zone)):%d %b}"


def trend_chart(trend: Trend, zone: str, label: str) -> Markup:
    """The alliance and wellbeing chart for a client page."""
    points = list(trend.points)
    if not points:
        return Markup('<p class="muted">No check-ins yet: the chart starts with the first.</p>')
    width, left, right = 640, 44, 604
    a_top, a_bottom = 16, 196  # alliance panel
    w_top, w_bottom = 236, 336  # wellbeing panel
    height = 372
    xs = _x_positions(points, left, right)
    top = trend.alliance_max or 40

    def ya(value: float) -> float:
        return a_bottom - value / top * (a_bottom - a_top)

    def yw(value: float) -> float:
        return w_bottom - value / 100 * (w_bottom - w_top)

    parts: list[str] = []
    # Panels and their axes.
    for y0, y1, name, ticks, scale in (
        (a_top, a_bottom, f"Alliance (0-{_fmt(top)})", (0, top / 2, top), ya),
        (w_top, w_bottom, "Wellbeing (%)", (0, 50, 100), yw),
    ):
        parts.append(
            f'<rect x="{left}" y="{y0}" width="{right - left}" height="{y1 - y0}" '
            f'fill="#ffffff" stroke="{GRID}"/>'
        )
        parts.append(
            f'<text x="{left}" y="{y0 - 4}" font-size="12" fill="#1a1a1a">{escape(name)}</text>'
        )
        for tick in ticks:
            y = scale(tick)
            parts.append(
                f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" '
                'stroke-dasharray="2 3"/>'
            )
            parts.append(
                f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                f'fill="{MUTED}">{_fmt(tick)}</text>'
            )
    if trend.baseline is not None and trend.band is not None:
        high = min(top, trend.baseline + trend.band)
        low = max(0.0, trend.baseline - trend.band)
        parts.append(
            f'<rect x="{left}" y="{ya(high):.1f}" width="{right - left}" '
            f'height="{ya(low) - ya(high):.1f}" fill="{BAND}"/>'
        )
    if trend.cutoff is not None:
        y = ya(trend.cutoff)
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{CUT}" '
            'stroke-dasharray="6 4"/>'
        )
    if trend.wellbeing_cutoff is not None:
        y = yw(trend.wellbeing_cutoff)
        parts.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{CUT}" '
            'stroke-dasharray="6 4"/>'
        )
    for x, point in zip(xs, points, strict=True):
        if point.missed:
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{a_top}" y2="{w_bottom}" stroke="{MUTED}" '
                'stroke-dasharray="1 3"/>'
            )
            parts.append(
                f'<text x="{x:.1f}" y="{a_bottom - 4}" font-size="12" text-anchor="middle" '
                f'fill="{MUTED}">×</text>'
            )
    for values, scale, colour, shape in (
        ([p.alliance for p in points], ya, INK, "circle"),
        ([p.wellbeing for p in points], yw, WELL, "square"),
    ):
        scored = [(x, scale(v)) for x, v in zip(xs, values, strict=True) if v is not None]
        if len(scored) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in scored)
            parts.append(
                f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2.5"/>'
            )
        for x, y in scored:
            if shape == "circle":
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
            else:
                parts.append(
                    f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
                )
    # Dates under the wellbeing panel: the first, the last, and some between.
    shown = sorted({0, len(points) - 1, *range(0, len(points), max(1, len(points) // 5))})
    for i in shown:
        parts.append(
            f'<text x="{xs[i]:.1f}" y="{w_bottom + 18}" font-size="11" text-anchor="middle" '
            f'fill="{MUTED}">{escape(_day(points[i].at, zone))}</text>'
        )
    description = escape(_describe(trend, points, zone))
    title = escape(f"{label}: alliance and wellbeing over the last {len(points)} check-ins")
    return Markup(
        f'<svg class="chart" role="img" aria-labelledby="chart-title chart-desc" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="chart-title">{title}</title><desc id="chart-desc">{description}</desc>'
        + "".join(parts)
        + "</svg>"
    )


def _describe(trend: Trend, points: Sequence[Point], zone: str) -> str:
    """The chart's numbers in words, for a screen reader (and for anyone, under the chart)."""
    items = []
    for point in points:
        day = _day(point.at, zone)
        if point.missed and point.alliance is None:
            items.append(f"{day}: not answered")
            continue
        bits = []
        if point.alliance is not None:
            bits.append(f"alliance {_fmt(point.alliance)}")
        if point.wellbeing is not None:
            bits.append(f"wellbeing {point.wellbeing:.0f}%")
        items.append(f"{day}: {', '.join(bits) or 'answered'}")
    usual = ""
    if trend.baseline is not None:
        usual = f" Usual alliance level {trend.baseline:.1f}."
    cutoff = f" Alliance cutoff {_fmt(trend.cutoff)}." if trend.cutoff is not None else ""
    return "; ".join(items) + "." + usual + cutoff
