# ruff: noqa: E501  (the summary's lines read best unwrapped)
"""The outputs of a run: the summary printed at the end of ``pushsim run``, report.json,
junit.xml and report.html, all in the run's out directory."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from loadtests.report.junit import junit_xml
from loadtests.report.page import num, render_html


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
        f"({num(ratio * 100 if ratio is not None else None, 2)}%), {m['lost']} lost, "
        f"{m.get('not_deliverable', 0)} not deliverable (token changed), {m['duplicate_deliveries']} duplicates"
    )
    failed = m.get("sender_failed")
    lines.append(
        f"  failed      {num(failed, 0)} by the sender's count, {num(m.get('sender_dead_lettered'), 0)} dead-lettered; "
        f"{m.get('dead_token_sends', 0)} sends to dead tokens, {num(m.get('sender_retries'), 0)} retries"
    )
    lines.append(
        f"  throughput  {num(m['throughput_per_s'])}/s accepted, {num(m.get('delivered_per_s'))}/s delivered "
        f"over {num(m['load_seconds'])}s"
    )
    lines.append(
        f"  latency     API p50 {num(m.get('api_latency_p50_ms'))} ms, p95 {num(m.get('api_latency_p95_ms'))} ms, "
        f"p99 {num(m.get('api_latency_p99_ms'))} ms; to the device p50 {num(m.get('delivery_latency_p50_ms'))} ms, "
        f"p99 {num(m.get('delivery_latency_p99_ms'))} ms"
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
    # absolute: ``pushsim run`` may have been started from another directory (tasks.py)
    out = Path(doc["outputs"]["html"]).absolute().parent
    lines.append(f"  report      {out / 'report.html'}")
    lines.append(f"  out         {out}/ (report.json, junit.xml, Locust's CSV and HTML, logs)")
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
