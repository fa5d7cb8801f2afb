"""The dashboard tests' fixtures: a simulator with ``dashboard=True`` and a client for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_helpers import DashClient

from simulator.testing.handle import SimulatorHandle, running_simulator


@pytest.fixture
def dash_sim(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path / "state", dashboard=True) as handle:
        yield handle


@pytest.fixture
def dash(dash_sim: SimulatorHandle) -> Iterator[DashClient]:
    client = DashClient(dash_sim)
    yield client
    client.close()
