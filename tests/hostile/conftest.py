"""The hostile-peer tests' simulator: ``pushsim simulator --no-tls`` in a child process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_peers import Target

from simulator.testing.handle import simulator_process


def start_target(tmp: Path, *args: str) -> Iterator[Target]:
    state = tmp / "state"
    log = tmp / "simulator.log"
    with (
        log.open("wb") as err,
        simulator_process(state, "--no-tls", "--seed", "1", *args, stderr=err.fileno()) as (
            proc,
            endpoints,
        ),
    ):
        yield Target(proc.pid, endpoints, state, log)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    """A fresh simulator for one test (an attack may leave it tired; the next starts clean)."""
    yield from start_target(tmp_path)
