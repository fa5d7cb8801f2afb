"""The ``hostile_client`` fault: the simulator's own misbehaving client, applied through
the control API, does what its behaviour says against the listeners (each attack counted
in the fault record), while a normal APNs request is still answered within ``WORST_S``."""

from __future__ import annotations

import time

import pytest
from hostile_peers import Probe, Target, rss_kb

from simulator.faults.parse import parse_faults
from simulator.faults.spec import FaultSpecError, HostileClient

pytestmark = pytest.mark.timeout(120)

WORST_S = 1.0
GROWTH_MB = 64
# behaviour -> an outcome its attacks end with when the listener holds (see hostile_actor)
ENDS = {
    "flood": "flood_goaway",
    "slow_headers": "slow_headers_closed",
    "never_reading": "never_reading_held",
    "endless_body": "endless_body_cut",
}


def test_the_fields_are_read_and_checked() -> None:
    (f,) = parse_faults({"kind": "hostile_client", "provider": "any"}, "t")
    assert f.params == HostileClient("mixed", 4)
    (f,) = parse_faults(
        {"kind": "hostile_client", "provider": "fcm", "behaviour": "flood", "connections": 2},
        "t",
    )
    assert f.params == HostileClient("flood", 2)
    for bad, field in [
        ({"behaviour": "polite"}, "behaviour"),
        ({"connections": 0}, "connections"),
        ({"connections": 1.5}, "connections"),
        ({"share": 0.5}, "kind"),
        ({"rate": 5}, "rate"),
    ]:
        with pytest.raises(FaultSpecError) as err:
            parse_faults({"kind": "hostile_client", "provider": "any", **bad}, "t")
        assert err.value.field.endswith(field), (bad, err.value)


@pytest.mark.parametrize("behaviour", list(ENDS))
def test_each_behaviour_runs_and_the_listeners_hold(target: Target, behaviour: str) -> None:
    probe = Probe(target)
    probe.send()
    base = rss_kb(target.pid)
    fault = {
        "id": "neighbour",
        "kind": "hostile_client",
        "provider": "any",
        "behaviour": behaviour,
        "connections": 3,
        "duration": "4s",
    }
    target.control("POST", "/_sim/faults", fault)
    seen: list[tuple[int, float]] = []
    peak = base
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 4.5:
            seen.append(probe.send())
            peak = max(peak, rss_kb(target.pid))
            time.sleep(0.05)
    finally:
        probe.close()
    (listed,) = target.control("GET", "/_sim/faults")["faults"]
    injected = listed["injected"]
    worst = max(s for _st, s in seen)
    print(f"\n[hostile] {behaviour} neighbour: {injected}, probe worst {worst * 1000:.0f} ms")
    assert injected.get(behaviour, 0) >= 1, injected  # its connections opened
    if behaviour in ("flood", "endless_body"):  # quick ones: ended, the listener's way
        assert injected.get(ENDS[behaviour], 0) >= 1, injected
    assert all(st == 200 for st, _s in seen) and worst < WORST_S, seen
    assert (peak - base) / 1024 < GROWTH_MB
    assert target.errors_logged() == []
