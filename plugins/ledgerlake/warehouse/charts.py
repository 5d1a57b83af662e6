"""Small inline-SVG charts for the HTML report: no JavaScript, no external assets, readable when printed.

Values arrive as Decimal and are drawn as floats (drawing only; every figure shown as text stays exact)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from html import escape

INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"

# One colour per unified entry type, stable across charts (Okabe-Ito based, colour-blind safe first).
TYPE_COLOURS = {
    "trade": "#0072B2",
    "fee": "#D55E00",
    "funding": "#E69F00",
    "rebate": "#009E73",
    "realized_pnl": "#56B4E9",
    "deposit": "#117733",
    "withdrawal": "#882255",
    "transfer": "#999933",
    "liquidation": "#CC0000",
    "settlement": "#6A3D9A",
    "reward": "#44AA99",
    "adjustment": "#AA4499",
    "other": "#888888",
}
STATUS_COLOURS = {
    "ok": "#2e9e5b",
    "mismatch": "#d64545",
    "not_reported": "#b8c2cc",
    "report_only": "#5b8def",
}


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi == lo:
        hi, lo = hi + (abs(hi) or 1) * 0.5, lo - (abs(lo) or 1) * 0.5
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    value = start
    while value <= hi + step * 0.5 and len(ticks) < 12:
        ticks.append(round(value, 12))
        value += step
    return ticks


def short_number(value: float) -> str:
    """Axis labels: 1.2k, 3.4M, 0.0012."""
    a = abs(value)
    if a >= 1e9:
        return f"{value / 1e9:.3g}B"
    if a >= 1e6:
        return f"{value / 1e6:.3g}M"
    if a >= 1e3:
        return f"{value / 1e3:.3g}k"
    if a == 0:
        return "0"
    return f"{value:.3g}"


def _x_labels(days: Sequence[date], x_of: dict[date, float], y: float) -> str:
    if not days:
        return ""
    picks = {days[0], days[-1]}
    if len(days) > 6:
        picks.add(days[len(days) // 2])
    parts = []
    for d in sorted(picks):
        anchor = "start" if d == days[0] else "end" if d == days[-1] else "middle"
        parts.append(
            f'<text x="{x_of[d]:.1f}" y="{y:.1f}" font-size="10" fill="{MUTED}" text-anchor="{anchor}">{d:%b %d}</text>'
        )
    return "".join(parts)


def balance_chart(
    points: Sequence[tuple[date, Decimal]], colour: str = "#0072B2", width: int = 320, height: int = 140
) -> str:
    """Closing balance per day as a step line with a light area."""
    if not points:
        return ""
    left, right, top, bottom = 44, 8, 8, 20
    days = [d for d, _ in points]
    values = [float(v) for _, v in points]
    ticks = nice_ticks(min(values), max(values), count=3)
    lo, hi = min(ticks[0], min(values)), max(ticks[-1], max(values))
    span = (hi - lo) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(days), 1)
    x_of = {d: left + step * i for i, d in enumerate(days)}

    def y(v: float) -> float:
        return top + plot_h - (v - lo) / span * plot_h

    grid = "".join(
        f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="{GRID}"/>'
        f'<text x="{left - 4}" y="{y(t) + 3:.1f}" font-size="10" fill="{MUTED}" text-anchor="end">'
        f"{short_number(t)}</text>"
        for t in ticks
    )
    path = []
    for i, (d, v) in enumerate(zip(days, values, strict=True)):
        x0, x1 = x_of[d], x_of[d] + step
        path.append(f"{'M' if i == 0 else 'L'}{x0:.1f},{y(v):.1f} L{x1:.1f},{y(v):.1f}")
    line = " ".join(path)
    base = top + plot_h
    area = f"{line} L{left + step * len(days):.1f},{base:.1f} L{left:.1f},{base:.1f} Z"
    dots = "".join(
        f'<rect x="{x_of[d]:.1f}" y="{top}" width="{step:.1f}" height="{plot_h}" fill="transparent">'
        f"<title>{d.isoformat()}: {escape(str(v))}</title></rect>"
        for d, v in points
    )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" class="chart">'
        f"{grid}"
        f'<path d="{area}" fill="{colour}" fill-opacity="0.12" stroke="none"/>'
        f'<path d="{line}" fill="none" stroke="{colour}" stroke-width="2"/>'
        f"{_x_labels(days, {d: x_of[d] + step / 2 for d in days}, height - 5)}{dots}</svg>"
    )


def flow_chart(
    days: Sequence[date],
    flows: dict[str, dict[date, tuple[Decimal, Decimal]]],
    width: int = 480,
    height: int = 180,
) -> str:
    """Per day, inflows stacked above zero and outflows below, one colour per entry type."""
    if not days:
        return ""
    left, right, top, bottom = 48, 8, 8, 20
    up = {d: sum(float(flows[t].get(d, (0, 0))[0]) for t in flows) for d in days}
    down = {d: sum(float(flows[t].get(d, (0, 0))[1]) for t in flows) for d in days}
    hi, lo = max(up.values(), default=0.0), -max(down.values(), default=0.0)
    ticks = nice_ticks(lo, hi)
    lo, hi = min(ticks[0], lo), max(ticks[-1], hi)
    span = (hi - lo) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / len(days)
    bar = max(step * 0.7, 1.0)

    def y(v: float) -> float:
        return top + plot_h - (v - lo) / span * plot_h

    parts = [
        f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="{GRID}"/>'
        f'<text x="{left - 4}" y="{y(t) + 3:.1f}" font-size="10" fill="{MUTED}" text-anchor="end">'
        f"{short_number(t)}</text>"
        for t in ticks
    ]
    for i, d in enumerate(days):
        x = left + step * i + (step - bar) / 2
        above, below = 0.0, 0.0
        for entry_type in sorted(flows, key=lambda t: list(TYPE_COLOURS).index(t) if t in TYPE_COLOURS else 99):
            inflow, outflow = (float(v) for v in flows[entry_type].get(d, (Decimal(0), Decimal(0))))
            colour = TYPE_COLOURS.get(entry_type, TYPE_COLOURS["other"])
            tip = f"{d.isoformat()} {entry_type}"
            if inflow:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(above + inflow):.1f}" width="{bar:.1f}" '
                    f'height="{max(y(above) - y(above + inflow), 0.5):.1f}" fill="{colour}">'
                    f"<title>{escape(tip)} in: {inflow:,.8g}</title></rect>"
                )
                above += inflow
            if outflow:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(below):.1f}" width="{bar:.1f}" '
                    f'height="{max(y(below - outflow) - y(below), 0.5):.1f}" fill="{colour}" fill-opacity="0.75">'
                    f"<title>{escape(tip)} out: {outflow:,.8g}</title></rect>"
                )
                below -= outflow
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="{INK}"/>')
    centres = {d: left + step * i + step / 2 for i, d in enumerate(days)}
    parts.append(_x_labels(days, centres, height - 5))
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" class="chart">'
        + "".join(parts)
        + "</svg>"
    )


def status_grid(
    rows: Sequence[str], days: Sequence[date], status: dict[tuple[str, date], str], label_width: int = 260
) -> str:
    """One row per series, one square per day coloured by reconciliation status."""
    cell, gap = 16, 2
    width = label_width + len(days) * (cell + gap) + 8
    height = 22 + len(rows) * (cell + gap)
    parts = []
    for j, d in enumerate(days):
        if j == 0 or j == len(days) - 1 or d.day == 1 or (len(days) <= 14):
            parts.append(
                f'<text x="{label_width + j * (cell + gap) + cell / 2:.1f}" y="12" font-size="9" fill="{MUTED}" '
                f'text-anchor="middle">{d:%d}</text>'
            )
    for i, name in enumerate(rows):
        y = 18 + i * (cell + gap)
        parts.append(
            f'<text x="{label_width - 8}" y="{y + cell - 4}" font-size="11" fill="{INK}" text-anchor="end">'
            f"{escape(name)}</text>"
        )
        for j, d in enumerate(days):
            s = status.get((name, d))
            x = label_width + j * (cell + gap)
            fill = STATUS_COLOURS.get(s or "", "#f5f7fa")
            title = f"{name} {d.isoformat()}: {s or 'no entries'}"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" rx="3" fill="{fill}">'
                f"<title>{escape(title)}</title></rect>"
            )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" class="grid">'
        + "".join(parts)
        + "</svg>"
    )
