"""The bundled library in quick mode stays short enough for CI (the full runs: tests/e2e)."""

from __future__ import annotations

import pytest

from loadtests.scenario.load import load
from scenarios import bundled

NAMES = [p.stem for p in bundled()]


@pytest.mark.parametrize("name", NAMES)
def test_quick_mode_keeps_each_scenario_short(name: str) -> None:
    """CI time: a quick run drives at most 15 s of load and drains within 30 s."""
    sc = load(name, quick=True)
    assert sc.duration <= 15.0, (name, sc.duration)
    assert sc.drain_timeout <= 30.0, (name, sc.drain_timeout)
