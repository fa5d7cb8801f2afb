"""Pure cores of the harness: measures from ground truth, judging, reports, templates."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from loadtests.judge.measures import (
    GroundTruth,
    compute,
    find_count,
    parse_prometheus,
    percentile,
)
from loadtests.judge.objectives import Objective, judge
from loadtests.judge.series import series
from loadtests.report.charts import fault_lanes, line_chart
from loadtests.report.junit import junit_xml
from loadtests.report.outputs import summary_text, write_all
from loadtests.report.page import render_html
from loadtests.run.faults import fault_windows
from loadtests.run.harness import RunResult
from loadtests.scenario.load import loads
from loadtests.scenario.template import render

T0 = 1_700_000_000.0


def sent(
    c: str, t: float, devs: list[str], ok: bool = True, ms: float = 5.0, kind: str = "user"
) -> dict[str, Any]:
    return {
        "c": c,
        "t": T0 + t,
        "ms": ms,
        "st": 202 if ok else 500,
        "ok": ok,
        "kind": kind,
        "dev": devs,
        "nid": f"n-{c}",
    }


def delivery(c: str, dev: str, t: float) -> dict[str, Any]:
    return {"correlation_id": c, "device_id": dev, "at": T0 + t, "provider": dev.split("-")[0]}


def truth(**kw: Any) -> GroundTruth:
    base: dict[str, Any] = dict(
        sent=[],
        deliveries=[],
        feed=[],
        dead_tokens=[],
        sim_stats={},
        sender_dead=[],
        sender_active=[],
        metrics_start=None,
        metrics_end=None,
        load_started_at=T0,
        load_ended_at=T0 + 10,
        ended_at=T0 + 12,
    )
    base.update(kw)
    return GroundTruth(**base)


def test_delivered_lost_and_not_deliverable_from_ground_truth() -> None:
    gt = truth(
        sent=[
            sent("a", 1, ["apns-1", "fcm-2"]),  # both arrive
            sent("b", 2, ["apns-1"]),  # lost: apns-1 was live throughout
            sent("c", 3, ["fcm-3"]),  # fcm-3 reinstalled after the send: not deliverable
            sent("d", 8, ["fcm-4"]),  # fcm-4 uninstalled before the send: not deliverable
            sent("e", 4, ["apns-1"], ok=False),  # refused by the API: not judged for delivery
            sent("f", 5, [], kind="topic"),
        ],
        deliveries=[
            delivery("a", "apns-1", 1.1),
            delivery("a", "fcm-2", 1.3),
            delivery("a", "fcm-2", 1.4),
            delivery("zz", "apns-1", 1.0),
        ],
        feed=[
            {"device_id": "fcm-3", "event": "rotated", "at": T0 + 6},
            {"device_id": "fcm-4", "event": "uninstalled", "at": T0 + 1},
        ],
    )
    m = compute(gt)
    assert m["accepted"] == 5
    assert m["api_errors"] == 1
    assert m["delivered"] == 2
    assert m["lost"] == 1
    assert m["lost_examples"][0]["correlation_id"] == "b"
    assert m["not_deliverable"] == 2
    assert m["deliverable"] == 3
    assert abs(m["delivered_ratio"] - 2 / 3) < 1e-6
    assert m["duplicate_deliveries"] == 1
    assert m["topic_sends"] == 1
    assert m["delivery_latency_p99_ms"] is not None and 250 <= m["delivery_latency_p99_ms"] <= 350


def test_pruning_measures_match_tokens_across_provider_spellings() -> None:
    dead = [
        {
            "provider": "apns",
            "token": "ab" * 32,
            "device_id": "apns-1",
            "first_rejected_at": T0 + 2,
            "count": 1,
        },
        {
            "provider": "webpush",
            "token": "sub1",
            "device_id": "webpush-2",
            "first_rejected_at": T0 + 3,
            "count": 4,
        },
        {
            "provider": "fcm",
            "token": "f:tok",
            "device_id": "fcm-3",
            "first_rejected_at": T0 + 4,
            "count": 2,
        },
    ]
    gt = truth(
        dead_tokens=dead,
        sender_dead=[
            {"provider": "apns", "token": "AB" * 32, "died_at": T0 + 2.5},
            {"provider": "webpush", "token": "https://127.0.0.1:9/wp/sub1", "died_at": T0 + 4},
        ],
        sender_active=[{"provider": "fcm", "token": "f:tok"}],
    )
    m = compute(gt)
    assert m["stale_tokens_left"] == 1
    assert m["wasted_sends"] == 3 + 1
    assert m["dead_token_sends"] == 7
    # the fcm token is still active at the end: its delay runs to the end of the run
    assert m["prune_delay_max_s"] == 8.0
    s = series(gt)
    assert s["rejected_at"] == [2.0, 3.0, 4.0]
    assert s["pruned_at"] == [2.5, 4.0]


def test_sender_metrics_and_simulator_counters() -> None:
    start = parse_prometheus('pushsim_sender_retries_total{provider="apns"} 2\n')
    end = parse_prometheus(
        "# HELP x\n"
        'pushsim_sender_retries_total{provider="apns"} 7\n'
        'pushsim_sender_retries_total{provider="fcm"} 5\n'
        "pushsim_sender_queue_depth 3\n"
        'pushsim_sender_failed_total{provider="fcm",reason="UNREGISTERED"} 1\n'
    )
    assert end["pushsim_sender_retries_total"] == 12
    stats = {
        "providers": {
            "apns": {"delivered": 90, "ServiceUnavailable": 8, "total": 98},
            "fcm": {"delivered": 10, "QUOTA_EXCEEDED": 2},
        },
        "retry_after_violations": {"apns": 1, "fcm": 2, "webpush": 0},
        "sends_during_outage": {"apns": 9, "fcm": 0, "webpush": 0},
    }
    m = compute(truth(metrics_start=start, metrics_end=end, sim_stats=stats))
    assert m["sender_retries"] == 10
    assert m["provider_failures"] == 10
    assert m["retries_per_failure"] == 1.0
    assert m["retry_after_violations"] == 3
    assert m["sends_during_outage"] == 9
    assert find_count({}, "retry_after_violations") is None


def test_judging_reports_measured_versus_required() -> None:
    measures = {
        "lost": 3,
        "delivered_ratio": 0.9995,
        "retry_after_violations": None,
        "retry_after_violations__why": "no fault plan",
    }
    v = judge(
        [
            Objective("max_lost", 0),
            Objective("min_delivered_ratio", 0.999),
            Objective("max_retry_after_violations", 0),
        ],
        measures,
    )
    assert [x.passed for x in v] == [False, True, False]
    assert "measured lost = 3, required <= 0" in v[0].detail
    assert "could not be measured (no fault plan)" in v[2].detail


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 99) is None
    assert percentile([5.0], 50) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


def test_templates_fill_values_and_drop_missing_objects() -> None:
    tpl = {
        "to": "{to}",
        "data": {"cid": "{correlation_id}", "pad": "{pad}"},
        "path": "/u/{user_id}",
        "keep": "{unknown}",
    }
    out = render(tpl, {"to": {"user": "u1"}, "correlation_id": "c1", "pad": None, "user_id": "u1"})
    assert out == {
        "to": {"user": "u1"},
        "data": {"cid": "c1"},
        "path": "/u/u1",
        "keep": "{unknown}",
    }


def test_fault_windows_from_the_timeline() -> None:
    body = {
        "started_at": T0,
        "windows": [
            {
                "fault": "apns-down",
                "kind": "outage",
                "provider": "apns",
                "start": 4.0,
                "end": 10.0,
                "start_wall": T0 + 4,
                "end_wall": T0 + 10,
                "count": 17,
            }
        ],
    }
    w = fault_windows(body)
    assert w == [
        {
            "kind": "outage",
            "provider": "apns",
            "start": T0 + 4,
            "end": T0 + 10,
            "absolute": True,
            "count": 17,
        }
    ]
    assert fault_windows(None) == []


def test_reports_say_what_was_measured(tmp_path: Path) -> None:
    sc = loads("name: demo\nobjectives: {max_lost: 0, min_throughput_per_s: 5}\n", "demo.yaml")
    gt = truth(
        sent=[sent("a", 1, ["apns-1"]), sent("b", 2, ["apns-1"])],
        deliveries=[delivery("a", "apns-1", 1.2)],
    )
    m = compute(gt)
    verdicts = judge(sc.objectives, m)
    faults = [{"kind": "outage", "provider": "apns", "start_s": 3.0, "end_s": 6.0, "count": 4}]
    result = RunResult(
        sc,
        tmp_path,
        m,
        verdicts,
        series(gt),
        faults,
        {"sender": "http://127.0.0.1:1", "ended_at": T0 + 12},
    )
    doc = write_all(result)
    assert not doc["passed"]
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert junit.get("tests") == "2" and junit.get("failures") == "2"
    fail = junit.find("testcase[@name='max_lost']/failure")
    assert fail is not None and fail.get("message") == "lost: measured 1, required <= 0"
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["measures"]["lost"] == 1
    page = (tmp_path / "report.html").read_text()
    assert "FAILED" in page and "<svg" in page and "outage apns" in page
    assert "http://" not in page.replace("http://127.0.0.1:1", "")  # no network assets
    text = summary_text(doc)
    assert "lost: b to device apns-1" in text
    assert "[FAIL] max_lost" in text
    assert junit_xml("x", []).count("<testsuite") == 1
    assert "<svg" in render_html(doc)


def test_overlapping_fault_windows_get_their_own_label_rows() -> None:
    """Labels of overlapping windows must not run together: each overlapping fault gets its
    own row above the chart, a later fault reuses a row that is free again, and a window
    that opened as the load started reads 0.0s, not -0.0s."""
    faults: list[dict[str, Any]] = [
        {"kind": "latency", "provider": "any", "start_s": -0.02, "end_s": 14.0, "count": 9},
        {"kind": "errors", "provider": "fcm", "start_s": 0.0, "end_s": 14.0, "count": 3},
        {"kind": "outage", "provider": "apns", "start_s": 0.5, "end_s": 4.0, "count": 5},
        {"kind": "throttle", "provider": "webpush", "start_s": 6.0, "end_s": 9.0, "count": 1},
    ]
    lanes = fault_lanes(faults, 16.0, 828)
    assert len(set(lanes[:3])) == 3  # all three overlap at 0.5-4 s
    assert lanes[3] == lanes[2]  # the outage row is free again by 6 s
    svg = line_chart("t", [("a", [(1.0, 1.0)])], 16.0, faults)
    assert svg.count('class="fl"') == 4 and "latency any" in svg and "outage apns" in svg
    label_rows = {el.get("y") for el in ET.fromstring(svg).iter("text") if el.get("class") == "fl"}
    assert len(label_rows) == 3
    doc = {
        "scenario": {"name": "x", "description": "", "load": "steady", "duration_s": 16},
        "measures": {},
        "series": {
            "bucket_s": 1.0,
            "sent": [1] * 16,
            "delivered": [],
            "errors": [],
            "api_p50_ms": [],
            "api_p99_ms": [],
            "retries": [],
            "queue_depth": [],
            "rejected_at": [],
            "pruned_at": [],
        },
        "faults": faults,
        "objectives": [],
        "passed": True,
        "generated_at": T0,
    }
    page = render_html(doc)
    assert "-0.0s" not in page and "0.0s &ndash; 14.0s" in page


def test_retry_after_ledger_spares_requests_already_in_flight_but_not_later_ones() -> None:
    """The Retry-After ground truth: a request arriving just after the answer that began a
    hold was on the wire before the sender could read it; later ones are violations, and
    extending a hold does not extend the grace."""
    from simulator.faults.record import IN_FLIGHT_GRACE, RetryAfterLedger

    ledger = RetryAfterLedger()
    g = IN_FLIGHT_GRACE
    assert not ledger.check("fcm", None, "p", 10.0, conn_id=1)
    ledger.note("fcm", "project", "p", 12.0, now=10.0, conn_id=1)
    assert not ledger.check("fcm", None, "p", 10.0 + g / 4, conn_id=1)  # crossed the answer
    ledger.note("fcm", "project", "p", 12.0 + g / 4, now=10.0 + g / 4, conn_id=1)
    assert not ledger.check("fcm", None, "p", 10.0 + g / 2, conn_id=2)  # other connection
    assert ledger.check("fcm", None, "p", 10.0 + g * 1.5, conn_id=1)  # early
    assert ledger.check("fcm", None, "p", 10.0 + g * 2, conn_id=2)
    assert not ledger.check("fcm", None, "p", 12.0 + g, conn_id=1)  # waited: honoured
    assert ledger.violations["fcm"] == 2 and ledger.in_flight["fcm"] == 2
    assert ledger.honoured["fcm"] == 1
    # a new hold later gets its own grace
    ledger.note("fcm", "project", "p", 20.0, now=18.0, conn_id=1)
    assert not ledger.check("fcm", None, "p", 18.0 + g / 2, conn_id=1)
    assert ledger.check("fcm", None, "p", 18.0 + g * 2, conn_id=1)
