# ruff: noqa: E501  (HTML and CSS templates read best unwrapped)
"""report.html: a self-contained page (inline SVG and CSS, no network assets) -- a verdict
banner, headline numbers, throughput / latency / retries over time with the fault windows
drawn on the same time axis, where the time went (CPU per process), the objectives table
(measured vs required) and the stale-token cleanup curve.
"""

from __future__ import annotations

import html
import time
from typing import Any

from loadtests.judge.objectives import fmt
from loadtests.report.charts import cumulative, line_chart, points, secs


def num(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 10:
            return str(int(v))
        return f"{v:.{digits}f}"
    return str(v)


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
        [(_chart_name(n), points(rows_by_name[n], bucket)) for n in order],
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
        ("accepted", num(m.get("accepted"))),
        ("delivered / deliverable", f"{m.get('delivered')}/{m.get('deliverable')}"),
        ("lost", num(m.get("lost"))),
        ("delivered ratio", f"{ratio * 100:.2f}%" if isinstance(ratio, (int, float)) else "-"),
        ("throughput /s", num(m.get("throughput_per_s"))),
        ("API p99 ms", num(m.get("api_latency_p99_ms"))),
        ("to device p99 ms", num(m.get("delivery_latency_p99_ms"))),
        ("retries", num(m.get("sender_retries"), 0)),
        ("stale tokens left", num(m.get("stale_tokens_left"))),
        ("wasted sends", num(m.get("wasted_sends"))),
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
        return [(label, points(ser[key], bucket)) for label, key in label_keys]

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
                ("answered dead by provider", cumulative(ser["rejected_at"])),
                ("pruned by sender", cumulative(ser["pruned_at"])),
            ],
            step=True,
        ),
    ]
    fault_rows = (
        "".join(
            f"<tr><td>{html.escape(str(f.get('kind')))}</td><td>{html.escape(str(f.get('provider', '')))}</td>"
            f"<td>{html.escape(str(f.get('variant', '')))}</td>"
            f"<td>{secs(f.get('start_s'))} &ndash; {secs(f.get('end_s'))}</td><td>{num(f.get('count'))}</td></tr>"
            for f in faults
        )
        or "<tr><td colspan='5' class='muted'>no faults injected</td></tr>"
    )
    measures_rows = "".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(num(v, 3))}</td></tr>"
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
load {html.escape(str(sc["load"]))} for {num(sc["duration_s"])}s{" · quick" if run.get("quick") else ""} ·
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
