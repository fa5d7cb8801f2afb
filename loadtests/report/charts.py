# ruff: noqa: E501  (SVG templates read best unwrapped)
"""SVG line charts for the run report (pure): series over the load's time axis, with each
injected fault drawn as a shaded window and a labelled bar in its own lane above the plot.
"""

from __future__ import annotations

import html
import math
from typing import Any

COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#a16207", "#db2777"]
FAULT_COLORS = {
    "outage": "#fecaca",
    "throttle": "#fde68a",
    "latency": "#bfdbfe",
    "errors": "#fbcfe8",
    "token_churn": "#ddd6fe",
    "auth": "#c7d2fe",
    "sender_crash": "#fed7aa",  # executed by the harness on a sender instance
}

LANE_H = 14  # height of one row of fault labels above a chart
LABEL_CHAR_W = 5.6  # width of a character of a fault label (10 px system-ui), in SVG units


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        if v <= mult * exp:
            return float(mult * exp)
    return float(10 * exp)


def line_chart(
    title: str,
    series: list[tuple[str, list[tuple[float, float]]]],
    x_max: float,
    faults: list[dict[str, Any]],
    unit: str = "",
    *,
    step: bool = False,
    marker: float | None = None,
    width: int = 900,
    height: int = 240,
    empty: str = "no data: the sender does not expose these metrics",
) -> str:
    left, right, top, bottom = 56, 16, 28, 34
    pw = width - left - right
    x_max = max(x_max, 1.0)
    lanes = fault_lanes(faults, x_max, pw)
    strip = len(set(lanes)) * LANE_H + (4 if lanes else 0)
    top += (
        strip  # each fault gets a labelled bar in a lane above the plot; the plot keeps its height
    )
    height += strip
    ph = height - top - bottom
    y_step = _nice_max(max((y for _, pts in series for _, y in pts), default=0.0) * 1.05 / 4)
    y_top = 4 * y_step

    def sx(x: float) -> float:
        return left + pw * max(0.0, min(x, x_max)) / x_max

    def sy(y: float) -> float:
        return top + ph - ph * max(0.0, y) / y_top

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">'
    ]
    parts.append(f'<text x="{left}" y="17" class="ct">{html.escape(title)}</text>')
    for f, lane in zip(faults, lanes, strict=True):
        start, end = _window(f, x_max)
        x0, x1 = sx(start), sx(end)
        w = max(2.0, x1 - x0)
        color = FAULT_COLORS.get(str(f.get("kind")), "#e5e7eb")
        label = html.escape(_fault_label(f))
        tip = f"<title>{label}: {secs(start)} to {secs(end)}</title>"
        parts.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{w:.1f}" height="{ph}" fill="{color}" opacity="0.4">{tip}</rect>'
        )
        ly = 26 + lane * LANE_H
        parts.append(
            f'<rect x="{x0:.1f}" y="{ly}" width="{w:.1f}" height="{LANE_H - 3}" rx="2" fill="{color}">{tip}</rect>'
        )
        if x0 + 3 + _label_width(label) <= left + pw:
            parts.append(f'<text x="{x0 + 3:.1f}" y="{ly + 9}" class="fl">{label}</text>')
        else:  # near the right edge: the label ends where the bar ends
            parts.append(
                f'<text x="{x0 + w - 3:.1f}" y="{ly + 9}" class="fl" text-anchor="end">{label}</text>'
            )
    for i in range(5):
        yv = y_top * i / 4
        y = sy(yv)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="ax" text-anchor="end">{yv:.{_decimals(y_step)}f}</text>'
        )
    x_step = _nice_max(x_max / 10)  # round seconds: 0s 2s 4s ..., not 0s 2s 4s 5s 7s
    for i in range(int(x_max / x_step + 1e-9) + 1):
        xv = x_step * i
        parts.append(
            f'<text x="{sx(xv):.1f}" y="{top + ph + 16}" class="ax" text-anchor="middle">'
            f"{xv:.{_decimals(x_step)}f}s</text>"
        )
    if marker is not None and 0 < marker < x_max:
        mx = sx(marker)
        parts.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + ph}" class="mark"/>')
        parts.append(f'<text x="{mx + 3:.1f}" y="{top + ph - 4}" class="fl">load ends</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>')
    if not any(pts for _, pts in series):
        parts.append(
            f'<text x="{left + pw / 2:.0f}" y="{top + ph / 2:.0f}" class="ax" text-anchor="middle">'
            f"{html.escape(empty)}</text>"
        )
    labels = [f"{name}{' (' + unit + ')' if unit else ''}" for name, _ in series]
    lx = left + pw - sum(8 + 7 * len(label) + 14 for label in labels)  # legend in series order
    for i, (_, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        if pts:
            coords: list[str] = []
            prev_y: float | None = None
            for x, y in pts:
                if step and prev_y is not None:
                    coords.append(f"{sx(x):.1f},{sy(prev_y):.1f}")
                coords.append(f"{sx(x):.1f},{sy(y):.1f}")
                prev_y = y
            parts.append(
                f'<polyline points="{" ".join(coords)}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        label = labels[i]
        lx += 8
        parts.append(f'<rect x="{lx:.0f}" y="8" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{lx + 14:.0f}" y="17" class="ax">{html.escape(label)}</text>')
        lx += 7 * len(label) + 14
    parts.append("</svg>")
    return "".join(parts)


def _fault_label(f: dict[str, Any]) -> str:
    label = f"{f.get('kind')} {f.get('provider', '')}".strip()
    return f"{label} ({f['variant']})" if f.get("variant") else label


def _label_width(label: str) -> float:
    return LABEL_CHAR_W * len(label)


def _window(f: dict[str, Any], x_max: float) -> tuple[float, float]:
    """A fault's window in seconds since the load started, clipped to the chart."""
    start = f.get("start_s")
    end = f.get("end_s")
    s = max(0.0, float(start)) if isinstance(start, (int, float)) else 0.0
    e = min(x_max, float(end)) if isinstance(end, (int, float)) else x_max  # open: to the end
    return s, max(s, e)


def fault_lanes(faults: list[dict[str, Any]], x_max: float, plot_width: float) -> list[int]:
    """The row each fault's labelled bar goes in, so that no two bars or labels overlap.

    Greedy interval partitioning over what each fault occupies on the x axis: its window
    or its label, whichever reaches further right. Returns one lane index per fault, in
    the order given."""
    x_max = max(x_max, 1.0)
    order = sorted(range(len(faults)), key=lambda i: _window(faults[i], x_max)[0])
    lane_ends: list[float] = []  # per lane, where its last bar or label ends (SVG units)
    lanes = [0] * len(faults)
    for i in order:
        start, end = _window(faults[i], x_max)
        x0 = plot_width * start / x_max
        x1 = plot_width * end / x_max
        label_end = x0 + 3 + _label_width(_fault_label(faults[i]))
        if label_end > plot_width:  # drawn right-aligned at the bar's end instead
            x0 = min(x0, x1 - 3 - _label_width(_fault_label(faults[i])))
            label_end = x1
        reach = max(x1, label_end) + 6
        for lane, lane_end in enumerate(lane_ends):
            if lane_end <= x0:
                lane_ends[lane] = reach
                lanes[i] = lane
                break
        else:
            lanes[i] = len(lane_ends)
            lane_ends.append(reach)
    return lanes


def secs(v: Any) -> str:
    """Seconds for a reader: "12.3s", never "-0.0s" (a window opened as the load started)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "-"
    text = f"{float(v):.1f}"
    return ("0.0" if text == "-0.0" else text) + "s"


def _decimals(step: float) -> int:
    if step >= 1 and float(step).is_integer():
        return 0
    return max(
        0,
        min(
            4,
            -math.floor(math.log10(step))
            + (0 if float(step * 10 ** -math.floor(math.log10(step))).is_integer() else 1),
        ),
    )


def points(values: list[Any], bucket: float) -> list[tuple[float, float]]:
    return [((i + 0.5) * bucket, float(v)) for i, v in enumerate(values) if v is not None]


def cumulative(times: list[float]) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = [(0.0, 0.0)]
    for i, t in enumerate(sorted(times)):
        pts.append((max(0.0, t), float(i + 1)))
    return pts
