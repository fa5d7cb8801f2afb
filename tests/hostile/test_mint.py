"""A large mint through the control API must not stall the provider listeners."""

from __future__ import annotations

import threading

import pytest
from hostile_peers import Measure, Target, under_attack

pytestmark = pytest.mark.timeout(120)

WORST_S = 1.0


def test_minting_100k_subscriptions_leaves_the_listeners_answering(target: Target) -> None:
    def attack(stop: threading.Event) -> int:
        return len(target.mint("webpush", 100_000))

    m = under_attack(target, attack, seconds=60.0, name="100k web push mint")
    assert isinstance(m, Measure) and m.attack_error is None, m.attack_error
    assert m.attack_result == 100_000
    assert all(st == 200 for st, _s in m.during)
    assert m.worst_s < WORST_S, m.summary("latency")
    assert m.after[0] == 200
