"""Fault definitions: the accepted vocabulary, and errors that say where and what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.faults.fields import parse_duration
from simulator.faults.parse import load_fault_file, parse_faults
from simulator.faults.spec import FaultSpecError, Latency, Outage, Throttle


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        (3, 3.0),
        ("0.5", 0.5),
    ],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 parsecs", "-1s", "s", "", True, None, [1], "1m x"])
def test_bad_durations(bad: Any) -> None:
    assert parse_duration(bad) is None


def test_the_documented_shapes_parse() -> None:
    specs = parse_faults(
        {
            "faults": [
                {
                    "kind": "outage",
                    "provider": "apns",
                    "mode": "status",
                    "retry_after": 5,
                    "start": "10s",
                    "duration": "20s",
                },
                {
                    "kind": "throttle",
                    "provider": "fcm",
                    "scope": "project",
                    "rate": 50,
                    "burst": 100,
                    "window": {"start": 0, "end": "30s"},
                },
                {
                    "kind": "latency",
                    "provider": "webpush",
                    "distribution": "lognormal",
                    "p50": "20ms",
                    "p99": "300ms",
                },
                {"kind": "errors", "provider": "any", "probability": 0.02, "share": 0.5},
                {
                    "kind": "token_churn",
                    "provider": "any",
                    "share": 0.1,
                    "action": "uninstall",
                    "at": "5s",
                    "duration": "20s",
                },
                {
                    "kind": "auth",
                    "provider": "apns",
                    "mode": "enforced",
                    "apns_token_max_age": "10m",
                },
                {"kind": "outage", "provider": "fcm", "mode": "reset", "after": "100ms"},
            ]
        },
        "demo.yaml",
    )
    assert specs[0].params == Outage("status", 5.0) and (specs[0].start, specs[0].end) == (
        10.0,
        30.0,
    )
    assert specs[1].params == Throttle("project", 50.0, 100.0) and specs[1].end == 30.0
    assert specs[2].params == Latency("lognormal", p50=0.02, p99=0.3) and specs[2].end is None
    assert specs[4].start == 5.0 and specs[4].end == 25.0
    assert specs[6].params == Outage("reset", after=0.1)


@pytest.mark.parametrize(
    ("fault", "field", "words"),
    [
        ({"provider": "apns"}, "faults[0].kind", "expected one of outage"),
        ({"kind": "outage", "provider": "apn"}, "faults[0].provider", "apns, fcm, webpush, any"),
        (
            {"kind": "outage", "provider": "apns", "mode": "melt"},
            "faults[0].mode",
            "status, refused",
        ),
        (
            {"kind": "outage", "provider": "apns", "window": {"start": 1, "duration": "forever"}},
            "faults[0].window.duration",
            "duration",
        ),
        (
            {"kind": "outage", "provider": "apns", "mode": "refused", "share": 0.5},
            "faults[0].mode",
            "whole listener",
        ),
        (
            {"kind": "outage", "provider": "apns", "mode": "hang", "retry_after": 3},
            "faults[0].retry_after",
            "status",
        ),
        ({"kind": "throttle", "provider": "fcm"}, "faults[0].rate", "per second"),
        ({"kind": "throttle", "provider": "fcm", "rate": 0}, "faults[0].rate", "> 0"),
        (
            {"kind": "errors", "provider": "fcm", "probability": 1.5},
            "faults[0].probability",
            "<= 1",
        ),
        (
            {
                "kind": "latency",
                "provider": "fcm",
                "distribution": "lognormal",
                "p50": 1,
                "p99": "0.5s",
            },
            "faults[0].p99",
            "p99 > p50",
        ),
        ({"kind": "token_churn", "provider": "fcm"}, "faults[0].share", "share"),
        ({"kind": "token_churn", "provider": "fcm", "rate": 1}, "faults[0].rate", "duration"),
        ({"kind": "auth", "provider": "apns", "share": 0.1}, "faults[0].kind", "provider-wide"),
        (
            {"kind": "errors", "provider": "fcm", "probability": 1, "colour": "red"},
            "faults[0].colour",
            "unknown field",
        ),
        (
            {"kind": "errors", "provider": "fcm", "probability": 1, "start": 5, "end": 2},
            "faults[0].end",
            "after start",
        ),
    ],
)
def test_errors_name_the_field_and_what_was_expected(
    fault: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_faults([fault], "x.yaml")
    assert info.value.field == field
    assert words in info.value.message
    assert str(info.value).startswith("x.yaml")


def test_file_errors_carry_the_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "name: x\n"
        "faults:\n"
        "  - kind: outage\n"
        "    provider: apns\n"
        "  - kind: throttle\n"
        "    provider: fcm\n"
        "    rate: lots\n"
    )
    with pytest.raises(FaultSpecError) as info:
        load_fault_file(path)
    assert info.value.line == 7 and info.value.field == "faults[1].rate"
    assert str(info.value).startswith(f"{path}:7: faults[1].rate: expected a number")


def test_file_without_faults_and_bad_yaml(tmp_path: Path) -> None:
    empty = tmp_path / "none.yaml"
    empty.write_text("name: nothing\nduration: 5s\n")
    assert load_fault_file(empty) == []
    broken = tmp_path / "broken.yaml"
    broken.write_text("faults:\n  - kind: outage\n   provider: [\n")
    with pytest.raises(FaultSpecError) as info:
        load_fault_file(broken)
    assert "YAML" in info.value.message and info.value.line is not None


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_faults([{"id": "a", "kind": "errors", "provider": "fcm", "probability": 1}] * 2, "x")
    assert info.value.field == "faults[1].id"
