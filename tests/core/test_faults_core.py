"""The fault plan's pure core and its scheduler state, on a fake clock (no sockets)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from pushsim.bucket import TokenBucket
from pushsim.clock import FakeClock
from simulator.faults.parse import load_fault_file, parse_faults
from simulator.faults.plan import (
    FaultPlan,
    RequestFacts,
    in_share,
    latency_sample,
    unit,
)
from simulator.faults.runtime import FaultRuntime
from simulator.faults.spec import Latency
from simulator.state.devices import DeviceRegistry

ROOT = Path(__file__).resolve().parents[2]


def plan_of(yaml_faults: list[dict[str, object]], seed: int = 7) -> FaultPlan:
    plan = FaultPlan(seed)
    plan.add(parse_faults(yaml_faults, "test"), 0.0)
    return plan


def test_window_opens_and_closes_to_the_millisecond() -> None:
    plan = plan_of([{"kind": "outage", "provider": "apns", "start": "10s", "duration": "250ms"}])
    apns = RequestFacts("apns", "ab" * 32)
    assert plan.decide(9.999, apns).action == "pass"
    assert plan.decide(10.0, apns).action == "unavailable"
    assert plan.decide(10.249, apns).action == "unavailable"
    assert plan.decide(10.250, apns).action == "pass"
    assert plan.decide(10.0, RequestFacts("fcm")).action == "pass"  # another provider
    events = plan.transitions(-math.inf, 11.0)
    assert [(round(at, 6), ev) for at, _f, ev in events] == [(10.0, "opened"), (10.25, "closed")]


def test_share_is_stable_for_a_seed_and_nested() -> None:
    tokens = [f"{i:064x}" for i in range(2000)]
    ten = {t for t in tokens if in_share(42, t, 0.1)}
    again = {t for t in tokens if in_share(42, t, 0.1)}
    twenty = {t for t in tokens if in_share(42, t, 0.2)}
    other_seed = {t for t in tokens if in_share(43, t, 0.1)}
    assert ten == again
    assert ten <= twenty
    assert 150 <= len(ten) <= 250  # about 10%
    assert ten != other_seed


def test_share_scoped_outage_hits_only_its_devices() -> None:
    plan = plan_of([{"kind": "outage", "provider": "fcm", "share": 0.3}], seed=5)
    hit = [
        t
        for t in (f"tok{i}" for i in range(300))
        if plan.decide(1.0, RequestFacts("fcm", t)).action != "pass"
    ]
    assert hit == [t for t in (f"tok{i}" for i in range(300)) if in_share(5, t, 0.3)]
    assert (
        plan.decide(1.0, RequestFacts("fcm", None)).action == "pass"
    )  # unknown token: not in any share


def test_two_runs_with_one_seed_decide_the_same() -> None:
    faults = [
        {"kind": "errors", "provider": "any", "probability": 0.3},
        {
            "kind": "latency",
            "provider": "apns",
            "distribution": "lognormal",
            "p50": "20ms",
            "p99": "200ms",
        },
        {"kind": "throttle", "provider": "webpush", "scope": "device", "rate": 1, "burst": 1},
    ]

    def run(seed: int) -> list[tuple[str, int | None, float]]:
        plan = plan_of(faults, seed)
        out = []
        for i in range(400):
            provider = ("apns", "fcm", "webpush")[i % 3]
            d = plan.decide(i * 0.01, RequestFacts(provider, f"t{i % 17}"))
            out.append((d.action, d.retry_after, round(d.delay, 9)))
        return out

    assert run(11) == run(11)
    assert run(11) != run(12)
    actions = [a for a, _r, _d in run(11)]
    assert 60 < actions.count("internal") < 200 and "throttled" in actions


def test_draws_do_not_depend_on_interleaving() -> None:
    plan_a = plan_of([{"kind": "errors", "provider": "apns", "probability": 0.5}])
    plan_b = plan_of([{"kind": "errors", "provider": "apns", "probability": 0.5}])
    seq_a = [(t, plan_a.decide(1.0, RequestFacts("apns", t)).action) for t in ["x", "y"] * 20]
    seq_b = [
        (t, plan_b.decide(1.0, RequestFacts("apns", t)).action) for t in ["y"] * 20 + ["x"] * 20
    ]
    for token in ("x", "y"):
        assert [a for t, a in seq_a if t == token] == [a for t, a in seq_b if t == token]


def test_token_bucket_retry_after_is_honest() -> None:
    plan = plan_of(
        [{"kind": "throttle", "provider": "fcm", "scope": "project", "rate": 0.5, "burst": 2}]
    )
    facts = RequestFacts("fcm", None, "proj")
    assert plan.decide(0.0, facts).action == "pass"
    assert plan.decide(0.0, facts).action == "pass"
    denied = plan.decide(0.1, facts)
    assert denied.action == "throttled" and denied.scope == ("project", "proj")
    assert denied.retry_after == 2  # 1 token at 0.5/s: 1.9 s away, rounded up
    assert plan.decide(0.1 + denied.retry_after - 0.2, facts).action == "throttled"
    assert plan.decide(0.1 + denied.retry_after, facts).action == "pass"
    # another project has its own bucket
    assert plan.decide(0.2, RequestFacts("fcm", None, "other")).action == "pass"


def test_bucket_refill_caps_at_burst() -> None:
    b = TokenBucket(rate=10, burst=3, tokens=3, updated=0.0)
    assert [b.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(100.0) == pytest.approx(0.1)


def test_latency_distributions() -> None:
    fixed = Latency("fixed", delay=0.2)
    assert latency_sample(fixed, 0.9) == 0.2
    uni = Latency("uniform", low=0.1, high=0.3)
    assert latency_sample(uni, 0.0) == pytest.approx(0.1) and latency_sample(
        uni, 0.5
    ) == pytest.approx(0.2)
    logn = Latency("lognormal", p50=0.05, p99=0.5)
    assert latency_sample(logn, 0.5) == pytest.approx(0.05)
    assert latency_sample(logn, 0.99) == pytest.approx(0.5)
    samples = sorted(latency_sample(logn, unit(1, i)) for i in range(2000))
    assert 0.04 < samples[1000] < 0.06 and 0.3 < samples[1980] < 0.8


def test_outage_retry_after_auto_counts_down_the_window() -> None:
    plan = plan_of(
        [
            {
                "kind": "outage",
                "provider": "webpush",
                "retry_after": "auto",
                "start": 5,
                "duration": 20,
            }
        ]
    )
    assert plan.decide(5.0, RequestFacts("webpush")).retry_after == 20
    assert plan.decide(24.5, RequestFacts("webpush")).retry_after == 1


def test_outage_beats_throttle_and_latency_adds() -> None:
    plan = plan_of(
        [
            {"kind": "latency", "provider": "apns", "delay": "100ms"},
            {"kind": "throttle", "provider": "apns", "rate": 1, "burst": 1},
            {"kind": "outage", "provider": "apns", "mode": "goaway", "start": 10, "duration": 1},
        ]
    )
    d = plan.decide(10.5, RequestFacts("apns", "t"))
    assert d.action == "goaway" and d.delay == pytest.approx(0.1) and d.during_outage
    assert [i.kind for i in d.injections] == ["outage", "latency"]


def test_anchor_now_counts_from_the_post() -> None:
    plan = FaultPlan(1)
    (f,) = plan.add(
        parse_faults(
            [{"kind": "errors", "provider": "apns", "probability": 1, "duration": "2s"}],
            "api",
            anchor="now",
        ),
        30.0,
    )
    assert (f.start, f.end) == (30.0, 32.0)


def test_duplicate_ids_add_nothing() -> None:
    plan = plan_of([{"id": "a", "kind": "errors", "provider": "apns", "probability": 1}])
    with pytest.raises(ValueError):
        plan.add(
            parse_faults(
                [
                    {"id": "b", "kind": "errors", "provider": "fcm", "probability": 1},
                    {"id": "a", "kind": "errors", "provider": "fcm", "probability": 1},
                ],
                "api",
            ),
            0.0,
        )
    assert list(plan.faults) == ["a"]


def _runtime(seed: int, clock: FakeClock) -> FaultRuntime:
    registry = DeviceRegistry(clock, random.Random(seed))
    return FaultRuntime(clock, seed, registry)


def churn_run(seed: int) -> list[dict[str, object]]:
    clock = FakeClock()
    rt = _runtime(seed, clock)
    rt.begin()
    rt.registry.mint("apns", 200)
    rt.registry.mint("fcm", 100)
    rt.apply(
        parse_faults(
            [
                {
                    "kind": "token_churn",
                    "provider": "any",
                    "share": 0.1,
                    "action": "reinstall",
                    "start": "5s",
                    "duration": "20s",
                },
                {
                    "kind": "token_churn",
                    "provider": "fcm",
                    "rate": 2,
                    "action": "uninstall",
                    "start": "1s",
                    "duration": "3s",
                },
            ],
            "test",
        )
    )
    for _ in range(3000):  # 30 s in 10 ms steps
        clock.advance(0.01)
        rt.tick()
    return rt.record.churn


def test_churn_share_and_rate_are_the_same_on_two_runs() -> None:
    first, second = churn_run(3), churn_run(3)
    assert first == second
    shares = [c for c in first if c["action"] == "reinstall"]
    rated = [c for c in first if c["action"] == "uninstall"]
    assert len(rated) == 6  # 2 per second for 3 seconds
    assert all(1.0 < float(str(c["at"])) <= 4.0 for c in rated)
    assert 15 <= len(shares) <= 45 and all(5.0 <= float(str(c["at"])) < 25.0 for c in shares)
    assert churn_run(4) != first


def test_churned_tokens_are_dead_and_announced() -> None:
    clock = FakeClock()
    rt = _runtime(9, clock)
    rt.begin()
    devs = rt.registry.mint("apns", 50)
    old = {d.id: d.token for d in devs}
    rt.apply(
        parse_faults(
            [{"kind": "token_churn", "provider": "apns", "share": 0.5, "duration": 1}], "t"
        )
    )
    clock.advance(1.5)
    rt.tick()
    feed = rt.registry.feed_since(0)
    assert feed and all(e["cause"] == "churn" and e["event"] == "rotated" for e in feed)
    for e in feed:
        assert rt.registry.lookup("apns", old[e["device_id"]]).state.value == "dead"
        assert rt.registry.lookup("apns", e["new_token"]).state.value == "valid"
    assert {e["device_id"] for e in feed} == {d.id for d in devs if unit(9, "share", d.id) < 0.5}


def test_runtime_records_windows_and_auth_switch() -> None:
    clock = FakeClock()
    rt = _runtime(1, clock)
    rt.begin()
    rt.apply(
        parse_faults(
            [
                {
                    "id": "lax",
                    "kind": "auth",
                    "provider": "apns",
                    "mode": "relaxed",
                    "start": 1,
                    "duration": 1,
                },
                {
                    "id": "tight",
                    "kind": "auth",
                    "provider": "fcm",
                    "oauth_token_lifetime": "60s",
                    "start": 3,
                    "duration": 1,
                },
            ],
            "t",
        )
    )
    seen = []
    for _ in range(50):
        clock.advance(0.1)
        rt.tick()
        seen.append((rt.auth.apns_token_max_age, rt.auth.oauth_token_lifetime))
    assert (None, 3600.0) in seen and (3600.0, 60.0) in seen and seen[-1] == (3600.0, 3600.0)
    events = [(w["fault"], w["event"], w["at"]) for w in rt.record.events]
    assert events == [
        ("lax", "opened", 1.0),
        ("lax", "closed", 2.0),
        ("tight", "opened", 3.0),
        ("tight", "closed", 4.0),
    ]


def test_demo_scenario_injects_the_same_on_two_runs() -> None:
    specs = load_fault_file(ROOT / "scenarios" / "faults-demo.yaml")
    kinds = {(s.kind, s.provider) for s in specs}
    assert (
        ("outage", "apns") in kinds
        and ("throttle", "fcm") in kinds
        and ("token_churn", "any") in kinds
    )
    outage = next(s for s in specs if s.kind == "outage")
    assert outage.end is not None and outage.end - outage.start == 20.0

    def run() -> tuple[list[object], list[dict[str, object]], list[dict[str, object]]]:
        clock = FakeClock()
        rt = _runtime(7, clock)
        rt.begin()
        for p in ("apns", "fcm", "webpush"):
            rt.registry.mint(p, 100)
        rt.apply(specs)
        decisions: list[object] = []
        tokens = {p: [d.token for d in rt.registry.live_devices(p)] for p in ("apns", "fcm")}
        for step in range(4500):  # 45 s in 10 ms steps, one APNs and one FCM send per step
            clock.advance(0.01)
            rt.tick()
            for p in ("apns", "fcm"):
                tok = tokens[p][step % len(tokens[p])]
                d = rt.plan.decide(
                    rt.now(), RequestFacts(p, tok, "pushsim-project" if p == "fcm" else None)
                )
                decisions.append((step, p, d.action, d.retry_after))
        return decisions, rt.record.events, rt.record.churn

    a, b = run(), run()
    assert a == b
    decisions, _windows, churn = a
    assert any(d[2] == "unavailable" for d in decisions)  # type: ignore[index]
    assert any(d[2] == "throttled" for d in decisions)  # type: ignore[index]
    assert 15 <= len(churn) <= 45  # 10% of 300 devices
