"""scenarios/faults-demo.yaml: the same injections on two runs with one seed, over real sockets."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from h2clients import FCM_PATH, fcm_body, h2_exchange

from pushsim.clock import FakeClock
from simulator.testing.handle import running_simulator, simulator_process

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "scenarios" / "faults-demo.yaml"


def demo_run(state: Path) -> dict[str, Any]:
    """Drive the demo plan on a fake clock through 45 s, sending real requests along the way."""
    clock = FakeClock()
    seen: list[tuple[float, str, list[int | None]]] = []
    with running_simulator(state, tls=False, seed=7, clock=clock, scenario=DEMO) as sim:
        for provider in ("apns", "fcm", "webpush"):
            sim.mint(provider, 100)
        apns = sim.mint("apns", 1)[0]["token"]
        for step in range(1, 91):  # 0.5 s steps
            sim.call(lambda: clock.advance(0.5))
            sim.call(sim.sim.faults.tick)
            t = step * 0.5
            if step % 4 == 0:
                out = h2_exchange(sim.endpoints["apns"], [(f"/3/device/{apns}", b"{}")], wait=2)
                seen.append((t, "apns", [s.status for s in out.streams.values()]))
            if step % 20 == 0:  # a burst of 25 FCM sends at once: the bucket holds 20
                out = h2_exchange(sim.endpoints["fcm"], [(FCM_PATH, fcm_body("x"))] * 25, wait=3)
                seen.append((t, "fcm", [s.status for s in out.streams.values()]))
        timeline = sim.control("GET", "/_sim/timeline")
        feed = sim.control("GET", "/_sim/feed?since=0")["events"]
    return {
        "seen": seen,
        "windows": [(w["fault"], w["start"], w["end"]) for w in timeline["windows"]],
        "events": [(e["fault"], e["event"], e["at"]) for e in timeline["events"]],
        "totals": timeline["totals"],
        "churn": [
            (c["at"], c["device_id"], c["old_token"], c["new_token"]) for c in timeline["churn"]
        ],
        "feed": [(e["device_id"], e["old_token"], e["new_token"]) for e in feed],
    }


def test_demo_scenario_same_injections_on_two_runs(tmp_path: Path) -> None:
    first = demo_run(tmp_path / "one")
    second = demo_run(tmp_path / "two")
    assert first == second
    assert ("apns-outage", 10.0, 30.0) in first["windows"]
    assert ("churn", 5.0, 25.0) in first["windows"]
    apns = {t: statuses[0] for t, p, statuses in first["seen"] if p == "apns"}
    assert all(code == 503 for t, code in apns.items() if 10.0 <= t < 30.0)
    assert all(code != 503 for t, code in apns.items() if t < 10.0 or t >= 30.0)
    fcm = [statuses for _t, p, statuses in first["seen"] if p == "fcm"]
    assert all(s.count(429) == 5 for s in fcm)  # 25 at once against a bucket of 20
    assert 20 <= len(first["churn"]) <= 42  # about 10% of 301 devices
    assert len(first["feed"]) == len(first["churn"])


def test_demo_scenario_real_run_bounded_in_time(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with simulator_process(
        state,
        *("--no-tls", "--seed", "7", "--scenario", str(DEMO)),
        env={"PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
        timeout=20,
    ) as (_, endpoints):
        with urllib.request.urlopen(endpoints["control"] + "/_sim/faults", timeout=5) as r:
            plan = json.loads(r.read())
        states = {f["id"]: f["state"] for f in plan["faults"]}
        assert states["fcm-throttle"] == "active" and plan["seed"] == 7
        assert set(states) == {"apns-outage", "fcm-throttle", "churn"}
        out = h2_exchange(endpoints["fcm"], [(FCM_PATH, fcm_body("x"))] * 30, wait=5)
        statuses = [s.status for s in out.streams.values()]
        assert statuses.count(429) >= 9  # bucket of 20, 10/s: at most a refill or two in between
        throttled = next(s for s in out.streams.values() if s.status == 429)
        assert json.loads(throttled.body)["error"]["details"][0]["errorCode"] == "QUOTA_EXCEEDED"
        assert int(throttled.headers["retry-after"]) == 1


def test_bad_scenario_stops_the_simulator_with_where_and_what(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("faults:\n  - kind: throttle\n    provider: fcm\n    rate: fast\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pushsim",
            "simulator",
            "--state-dir",
            str(tmp_path / "s"),
            "--scenario",
            str(bad),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"{bad}:4: faults[0].rate: expected a number" in done.stderr
