"""Shared fixtures: a real simulator on loopback for each test that asks for one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_helpers import DashClient
from nodejs import install_web_push

from simulator.testing.handle import SimulatorHandle, running_simulator

# ``pushsim`` and ``pushsim_plain`` come from the plugin pushsim ships (simulator.testing.plugin);
# the suite calls them by shorter names.


@pytest.fixture
def sim(pushsim: SimulatorHandle) -> SimulatorHandle:
    return pushsim


@pytest.fixture
def sim_plain(pushsim_plain: SimulatorHandle) -> SimulatorHandle:
    """The simulator without TLS (h2c prior knowledge and plain HTTP/1.1)."""
    return pushsim_plain


@pytest.fixture
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever a test sends, the simulator and sender must not log an unexpected error."""
    caplog.set_level(logging.WARNING)
    yield
    # caplog.records would be the teardown phase's own (empty) list: read the test's phases
    records = caplog.get_records("setup") + caplog.get_records("call")
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() + (r.exc_text or "") for r in errors]


@pytest.fixture(scope="session")
def web_push_installed() -> None:
    """npm's web-push in tests/node/node_modules (installed on first use), or a skip saying why."""
    install_web_push()


@pytest.fixture
def dash_sim(tmp_path: Path) -> Iterator[SimulatorHandle]:
    """A simulator serving its dashboard (``dashboard=True``)."""
    with running_simulator(tmp_path / "state", dashboard=True) as handle:
        yield handle


@pytest.fixture
def dash(dash_sim: SimulatorHandle) -> Iterator[DashClient]:
    """An HTTP/2 client for ``dash_sim``'s dashboard."""
    client = DashClient(dash_sim)
    yield client
    client.close()
