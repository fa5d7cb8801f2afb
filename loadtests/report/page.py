# ruff: noqa: E501  (HTML, CSS and SVG templates read best unwrapped)
"""Reports of a run: a summary for the terminal, report.json, junit.xml and report.html.

report.html is self-contained (inline SVG and CSS, no network assets): a verdict banner,
headline numbers, throughput / latency / retries over time with the fault windows drawn
on the same time axis, the objectives table (measured vs required) and the stale-token
cleanup curve.
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from loadtests.judge.objectives import Verdict, fmt


def _num(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 10:
            return str(int(v))
        return f"{v:.{digits}f}"
    return str(v)


def summary_text(doc: dict[str, Any]) -> str:
    """The run's summary as printed at the end of ``pushsim run``."""
    m = doc["measures"]
    verdicts = doc["objectives"]
    passed = sum(1 for v in verdicts if v["passed"])
    word = "PASSED" if doc["passed"] else "FAILED"
    lines = [
        f"pushsim run {doc['scenario']['name']}: {word} ({passed}/{len(verdicts)} objectives held)"
    ]
    lines.append(
        f"  sent        {m['accepted']} notifications accepted of {m['requests']} requests "
        f"({m['api_errors']} API errors, {m.get('topic_sends', 0)} to topics)"
    )
    ratio = m.get("delivered_ratio")
    lines.append(
        f"  delivered   {m['delivered']}/{m['deliverable']} deliverable "
        f"({_num(ratio * 100 if ratio is not None else None, 2)}%), {m['lost']} lost, "
        f"{m.get('not_deliverable', 0)} not deliverable (token changed), {m['duplicate_deliveries']} duplicates"
    )
    failed = m.get("sender_failed")
    lines.append(
        f"  failed      {_num(failed, 0)} by the sender's count, {_num(m.get('sender_dead_lettered'), 0)} dead-lettered; "
        f"{m.get('dead_token_sends', 0)} sends to dead tokens, {_num(m.get('sender_retries'), 0)} retries"
    )
    lines.append(
        f"  throughput  {_num(m['throughput_per_s'])}/s accepted, {_num(m.get('delivered_per_s'))}/s delivered "
        f"over {_num(m['load_seconds'])}s"
    )
    lines.append(
        f"  latency     API p50 {_num(m.get('api_latency_p50_ms'))} ms, p95 {_num(m.get('api_latency_p95_ms'))} ms, "
        f"p99 {_num(m.get('api_latency_p99_ms'))} ms; to the device p50 {_num(m.get('delivery_latency_p50_ms'))} ms, "
        f"p99 {_num(m.get('delivery_latency_p99_ms'))} ms"
    )
    for v in verdicts:
        mark = "ok  " if v["passed"] else "FAIL"
        lines.append(f"  [{mark}] {v['name']}: {v['detail']}")
    for ex in m.get("lost_examples", [])[:3]:
        lines.append(
            f"  lost: {ex['correlation_id']} to device {ex['device_id']} (notification {ex.get('id')})"
        )
    cpu_line = _cpu_summary(doc.get("cpu") or {})
    if cpu_line:
        lines.append(f"  cpu         {cpu_line}")
    lines.append(f"  report      {doc['outputs']['html']}")
    return "\n".join(lines)


def _cpu_summary(cpu: dict[str, Any]) -> str:
    """Where the time went, in one line: the verdict, then every process's peak."""
    v = cpu.get("verdict") or {}
    if not v:
        return ""
    levels = cpu.get("levels") or {}
    busiest = sorted(
        ((n, lv) for n, lv in levels.items() if n != "machine total"),
        key=lambda kv: -float(kv[1].get("peak", 0.0)),
    )
    split = ", ".join(f"{n} {float(lv['peak']):.0f}%" for n, lv in busiest)
    return f"{v.get('text')}" + (f" [peak % of one core: {split}]" if split else "")


def _chart_name(name: str) -> str:
    return name.replace("locust-worker-", "worker ").replace("locust-master", "master")


def cpu_section(doc: dict[str, Any], x_max: float, faults: list[dict[str, Any]]) -> str:
    """The "where the time went" chart, verdict and table (CPU % of one core per process)."""
    cpu = doc.get("cpu") or {}
    ser = doc["series"]
    bucket = float(ser.get("bucket_s", 1.0))
    rows_by_name: dict[str, list[Any]] = ser.get("cpu") or {}
    order = sorted(rows_by_name, key=lambda n: (_ROLE_ORDER.get(n.split("-")[0], 9), n))
    chart = line_chart(
        f"CPU per process (% of one core; {cpu.get('cores', '?')} cores)",
        [(_chart_name(n), _pts(rows_by_name[n], bucket)) for n in order],
        x_max,
        faults,
        marker=ser.get("load_end_s"),
        empty="no CPU samples: sampling reads Linux /proc",
    )
    v = cpu.get("verdict") or {}
    levels = cpu.get("levels") or {}
    share = v.get("simulator_share")
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{float(lv['mean']):.0f}%</td><td>{float(lv['peak']):.0f}%</td></tr>"
        for n, lv in sorted(levels.items(), key=lambda kv: -float(kv[1].get("peak", 0.0)))
    )
    cls = "bad" if v.get("bottleneck") == "simulator" else "ok"
    sim = v.get("simulator_pct")
    sim_line = (
        f"<p><span class='{cls}'>Simulator: {float(sim):.0f}% of a core at its busiest"
        + (f", {float(share) * 100:.0f}% of the CPU the run used" if share is not None else "")
        + "</span> &mdash; pushsim's simulator must never be what limits a test.</p>"
        if sim is not None
        else ""
    )
    return (
        "<h2>Where the time went</h2>"
        f"<p><b>{html.escape(str(v.get('text', 'no CPU samples')))}</b></p>{sim_line}"
        f"{chart}"
        "<table><tr><th>process</th><th>mean CPU during load</th><th>busiest quarter</th></tr>"
        f"{rows or '<tr><td colspan=3 class=muted>no samples</td></tr>'}</table>"
    )


_ROLE_ORDER = {"simulator": 0, "sender": 1, "locust": 2, "pushsim run": 3}


def build_doc(result: Any) -> dict[str, Any]:
    out: Path = result.out
    sc = result.scenario
    return {
        "pushsim": "run-report/1",
        "generated_at": time.time(),
        "scenario": {
            "name": sc.name,
            "description": sc.description,
            "source": sc.source,
            "duration_s": sc.duration,
            "load": sc.load.shape,
            "population": sc.population.devices,
        },
        "passed": result.passed,
        "objectives": [v.to_json() for v in result.verdicts],
        "measures": result.measures,
        "faults": result.faults,
        "series": result.series,
        "cpu": getattr(result, "cpu", {}) or {},
        "run": result.info,
        "outputs": {
            "json": str(out / "report.json"),
            "html": str(out / "report.html"),
            "junit": str(out / "junit.xml"),
            "locust_html": str(out / "locust.html"),
            "locust_csv": str(out / "locust_stats.csv"),
        },
    }


def write_all(result: Any) -> dict[str, Any]:
    doc = build_doc(result)
    out: Path = result.out
    (out / "report.json").write_text(
        json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8"
    )
    (out / "junit.xml").write_text(
        junit_xml(doc["scenario"]["name"], result.verdicts, doc), encoding="utf-8"
    )
    (out / "report.html").write_text(render_html(doc), encoding="utf-8")
    return doc


# -- junit ------------------------------------------------------------------------------


def junit_xml(name: str, verdicts: list[Verdict], doc: dict[str, Any] | None = None) -> str:
    failures = sum(1 for v in verdicts if not v.passed)
    duration = 0.0
    if doc is not None:
        info = doc.get("run", {})
        duration = max(
            0.0, float(info.get("ended_at", 0.0)) - float(info.get("load_started_at", 0.0))
        )
    suite = ET.Element(
        "testsuite",
        name=f"pushsim.{name}",
        tests=str(len(verdicts)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{duration:.3f}",
    )
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"pushsim.{name}", name=v.name, time="0")
        measured = fmt(v.measured, v.unit)
        required = f"{v.op} {fmt(v.required, v.unit)}"
        if not v.passed:
            fail = ET.SubElement(
                case,
                "failure",
                message=f"{v.measure}: measured {measured}, required {required}",
                type="ObjectiveFailed",
            )
            fail.text = f"{v.description}\n{v.detail}"
        out = ET.SubElement(case, "system-out")
        out.text = f"{v.measure} = {measured} (required {required}): {v.description}"
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def junit_error(name: str, message: str) -> str:
    suite = ET.Element("testsuite", name=f"pushsim.{name}", tests="1", failures="0", errors="1")
    case = ET.SubElement(suite, "testcase", classname=f"pushsim.{name}", name="run")
    err = ET.SubElement(
        case,
        "error",
        message=message.splitlines()[0][:500] if message else "error",
        type="HarnessError",
    )
    err.text = message
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


# -- SVG charts ---------------------------------------------------------------------------

COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#a16207", "#db2777"]
FAULT_COLORS = {
    "outage": "#fecaca",
    "throttle": "#fde68a",
    "latency": "#bfdbfe",
    "errors": "#fbcfe8",
    "token_churn": "#ddd6fe",
    "auth": "#c7d2fe",
}


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
        tip = f"<title>{label}: {_secs(start)} to {_secs(end)}</title>"
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


LANE_H = 14  # height of one row of fault labels above a chart
LABEL_CHAR_W = 5.6  # width of a character of a fault label (10 px system-ui), in SVG units


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


def _secs(v: Any) -> str:
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


def _pts(values: list[Any], bucket: float) -> list[tuple[float, float]]:
    return [((i + 0.5) * bucket, float(v)) for i, v in enumerate(values) if v is not None]


def _cumulative(times: list[float]) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = [(0.0, 0.0)]
    for i, t in enumerate(sorted(times)):
        pts.append((max(0.0, t), float(i + 1)))
    return pts


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
.muted{color:#64748b}
.banner{padding:14px 18px;border-radius:10px;color:#fff;font-size:20px;font-weight:650;margin:16px 0}
.pass{background:#16a34a}.fail{background:#dc2626}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:10px}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:10px 12px}
.card b{display:block;font-size:22px}.card span{color:#64748b;font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e2e8f0;border-radius:10px}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #e2e8f0;vertical-align:top}
th{background:#f1f5f9;font-weight:600}
.ok{color:#16a34a;font-weight:700}.bad{color:#dc2626;font-weight:700}
.chart{width:100%;height:auto;background:#fff;border:1px solid #e2e8f0;border-radius:10px;margin:6px 0}
.ct{font-size:13px;font-weight:600;fill:#0f172a}.ax{font-size:11px;fill:#475569}.fl{font-size:10px;fill:#7f1d1d}
.grid{stroke:#e2e8f0;stroke-width:1}.frame{fill:none;stroke:#cbd5e1}.mark{stroke:#64748b;stroke-dasharray:4 3}
code{background:#f1f5f9;padding:1px 4px;border-radius:4px}
"""


def render_html(doc: dict[str, Any]) -> str:
    sc = doc["scenario"]
    m = doc["measures"]
    ser = doc["series"]
    faults = doc.get("faults", [])
    bucket = float(ser.get("bucket_s", 1.0))
    n = len(ser.get("sent", []))
    x_max = max(n * bucket, 1.0)
    load_end = ser.get("load_end_s")
    verdicts = doc["objectives"]
    ok = doc["passed"]
    held = sum(1 for v in verdicts if v["passed"])
    ratio = m.get("delivered_ratio")
    cards = [
        ("accepted", _num(m.get("accepted"))),
        ("delivered / deliverable", f"{m.get('delivered')}/{m.get('deliverable')}"),
        ("lost", _num(m.get("lost"))),
        ("delivered ratio", f"{ratio * 100:.2f}%" if isinstance(ratio, (int, float)) else "-"),
        ("throughput /s", _num(m.get("throughput_per_s"))),
        ("API p99 ms", _num(m.get("api_latency_p99_ms"))),
        ("to device p99 ms", _num(m.get("delivery_latency_p99_ms"))),
        ("retries", _num(m.get("sender_retries"), 0)),
        ("stale tokens left", _num(m.get("stale_tokens_left"))),
        ("wasted sends", _num(m.get("wasted_sends"))),
        (
            "simulator CPU (peak)",
            f"{m['simulator_cpu_pct']:.0f}%"
            if isinstance(m.get("simulator_cpu_pct"), (int, float))
            else "-",
        ),
    ]
    rows = []
    for v in verdicts:
        cls, word = ("ok", "passed") if v["passed"] else ("bad", "FAILED")
        rows.append(
            f"<tr><td class='{cls}'>{word}</td><td><code>{html.escape(v['name'])}</code><br>"
            f"<span class='muted'>{html.escape(v['description'])}</span></td>"
            f"<td>{html.escape(fmt(v['measured'], v['unit']))}</td>"
            f"<td>{html.escape(v['op'])} {html.escape(fmt(v['required'], v['unit']))}</td></tr>"
        )
    if not rows:
        rows.append(
            "<tr><td colspan='4' class='muted'>this scenario states no objectives</td></tr>"
        )
    Series = list[tuple[str, list[tuple[float, float]]]]

    def chart(title: str, series: Series, unit: str = "", *, step: bool = False) -> str:
        return line_chart(title, series, x_max, faults, unit, step=step, marker=load_end)

    def sampled(*label_keys: tuple[str, str]) -> Series:
        return [(label, _pts(ser[key], bucket)) for label, key in label_keys]

    charts = [
        chart(
            "Throughput (per second)",
            sampled(("accepted", "sent"), ("delivered", "delivered"), ("API errors", "errors")),
        ),
        chart(
            "API latency of POST /v1/notifications",
            sampled(("p50", "api_p50_ms"), ("p99", "api_p99_ms")),
            "ms",
        ),
        chart(
            "Sender retries and queue depth",
            sampled(("retries/s", "retries"), ("queue depth", "queue_depth")),
        ),
        chart(
            "Stale-token cleanup (cumulative)",
            [
                ("answered dead by provider", _cumulative(ser["rejected_at"])),
                ("pruned by sender", _cumulative(ser["pruned_at"])),
            ],
            step=True,
        ),
    ]
    fault_rows = (
        "".join(
            f"<tr><td>{html.escape(str(f.get('kind')))}</td><td>{html.escape(str(f.get('provider', '')))}</td>"
            f"<td>{html.escape(str(f.get('variant', '')))}</td>"
            f"<td>{_secs(f.get('start_s'))} &ndash; {_secs(f.get('end_s'))}</td><td>{_num(f.get('count'))}</td></tr>"
            for f in faults
        )
        or "<tr><td colspan='5' class='muted'>no faults injected</td></tr>"
    )
    measures_rows = "".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(_num(v, 3))}</td></tr>"
        for k, v in m.items()
        if not k.endswith("__why") and isinstance(v, (int, float, type(None)))
    )
    lost = "".join(
        f"<tr><td><code>{html.escape(str(e['correlation_id']))}</code></td><td>{html.escape(str(e['device_id']))}</td>"
        f"<td>{html.escape(str(e.get('id')))}</td></tr>"
        for e in m.get("lost_examples", [])
    )
    lost_html = (
        f"<h2>Lost notifications (first {len(m.get('lost_examples', []))})</h2><table><tr><th>correlation id</th>"
        f"<th>device</th><th>notification id</th></tr>{lost}</table>"
        if lost
        else ""
    )
    run = doc.get("run", {})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pushsim {html.escape(sc["name"])}: {"passed" if ok else "FAILED"}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>
<body><main>
<h1>pushsim run <code>{html.escape(sc["name"])}</code></h1>
<div class="muted">{html.escape(sc.get("description") or "")}</div>
<div class="muted">sender {html.escape(str(run.get("sender", "")))} · {run.get("devices", "?")} devices ·
load {html.escape(str(sc["load"]))} for {_num(sc["duration_s"])}s{" · quick" if run.get("quick") else ""} ·
seed {run.get("seed", "?")} · {time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc["generated_at"]))}</div>
<div class="banner {"pass" if ok else "fail"}">{"PASSED" if ok else "FAILED"}: {held} of {len(verdicts)} objectives held</div>
<div class="cards">{"".join(f'<div class="card"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>' for k, v in cards)}</div>
<h2>Objectives</h2>
<table><tr><th></th><th>objective</th><th>measured</th><th>required</th></tr>{"".join(rows)}</table>
<h2>Over time</h2>
<div class="muted">Seconds since the load started; shaded bands are injected faults, each labelled in a row above the chart (hover for its window).</div>
{"".join(charts)}
{cpu_section(doc, x_max, faults)}
<h2>Faults injected</h2>
<table><tr><th>kind</th><th>provider</th><th>mode</th><th>window</th><th>count</th></tr>{fault_rows}</table>
{lost_html}
<h2>All measures</h2>
<table><tr><th>measure</th><th>value</th></tr>{measures_rows}</table>
<p class="muted">Locust's own report: <a href="locust.html">locust.html</a>, CSV <code>locust_stats.csv</code>.
Machine-readable: <a href="report.json">report.json</a>, <a href="junit.xml">junit.xml</a>.</p>
</main></body></html>
"""
