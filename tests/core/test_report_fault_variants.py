"""A fault's action / mode / scope travels from the simulator's timeline into the run
report, so two faults of one kind and provider (mixed-soak's reinstalls and uninstalls)
read differently in the fault table and the chart labels."""

from __future__ import annotations

import random

from loadtests.report.charts import line_chart
from loadtests.report.page import render_html
from loadtests.run.faults import fault_windows
from pushsim.clock import FakeClock
from simulator.faults.parse import parse_faults
from simulator.faults.record import fault_variant
from simulator.faults.runtime import FaultRuntime
from simulator.state.devices import DeviceRegistry

SERIES = (
    "delivered",
    "errors",
    "api_p50_ms",
    "api_p99_ms",
    "retries",
    "queue_depth",
    "rejected_at",
    "pruned_at",
)


def test_variant_of_each_kind() -> None:
    specs = parse_faults(
        [
            {"kind": "token_churn", "provider": "any", "action": "uninstall", "share": 0.1},
            {"kind": "outage", "provider": "apns", "mode": "goaway"},
            {"kind": "throttle", "provider": "fcm", "scope": "device", "rate": 2},
            {"kind": "latency", "provider": "any", "distribution": "fixed", "delay": "50ms"},
            {"kind": "errors", "provider": "webpush", "probability": 0.005},
            {"kind": "auth", "provider": "apns", "mode": "relaxed"},
        ],
        "test",
    )
    assert [fault_variant(s) for s in specs] == [
        "uninstall",
        "goaway",
        "device 2/s",
        "fixed",
        "0.5%",
        "relaxed",
    ]


def test_two_churn_windows_of_one_provider_are_told_apart() -> None:
    clock = FakeClock()
    rt = FaultRuntime(clock, 7, DeviceRegistry(clock, random.Random(7)))
    rt.begin()
    rt.registry.mint("apns", 20)
    rt.apply(
        parse_faults(
            [
                {
                    "id": "re",
                    "kind": "token_churn",
                    "provider": "any",
                    "action": "reinstall",
                    "share": 0.2,
                },
                {
                    "id": "un",
                    "kind": "token_churn",
                    "provider": "any",
                    "action": "uninstall",
                    "share": 0.1,
                },
            ],
            "test",
        )
    )
    for _ in range(10):
        clock.advance(0.1)
        rt.tick()
    timeline = rt.record.timeline(rt.now())
    assert {e["variant"] for e in timeline["events"]} == {"reinstall", "uninstall"}
    windows = fault_windows(timeline)
    assert sorted(w["variant"] for w in windows) == ["reinstall", "uninstall"]
    faults = [{**w, "start_s": 0.0, "end_s": 1.0} for w in windows]
    svg = line_chart("t", [("a", [(0.5, 1.0)])], 2.0, faults)
    assert "token_churn any (reinstall)" in svg and "token_churn any (uninstall)" in svg
    doc = {
        "scenario": {"name": "x", "description": "", "load": "steady", "duration_s": 2},
        "measures": {},
        "series": {"bucket_s": 1.0, "sent": [1, 1], **{k: [] for k in SERIES}},
        "faults": faults,
        "objectives": [],
        "passed": True,
        "generated_at": 0.0,
    }
    page = render_html(doc)
    assert "<th>mode</th>" in page
    assert "<td>any</td><td>reinstall</td>" in page and "<td>any</td><td>uninstall</td>" in page
