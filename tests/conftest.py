"""Shared fixtures: a real simulator on loopback for each test that asks for one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.testing import SimulatorHandle, running_simulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path / "state") as handle:
        yield handle


@pytest.fixture
def sim_plain(tmp_path: Path) -> Iterator[SimulatorHandle]:
    """The simulator without TLS (h2c prior knowledge and plain HTTP/1.1)."""
    with running_simulator(tmp_path / "state", tls=False) as handle:
        yield handle
