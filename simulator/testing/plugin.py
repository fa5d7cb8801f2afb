"""A pytest plugin for testing your own sender against pushsim.

Installed with pushsim (entry point ``pytest11``), it gives any test suite these fixtures:

- ``pushsim`` -- a real simulator on 127.0.0.1 (port 0, TLS) running for one test, as a
  :class:`~simulator.testing.handle.SimulatorHandle`: ``.endpoints`` (what ``endpoints.json``
  holds), ``.state_dir`` (the minted credentials), ``.mint(provider, count)``,
  ``.control(method, path, body)`` and ``.call(fn)`` (run ``fn`` on the simulator's loop);
- ``pushsim_plain`` -- the same without TLS (h2c with prior knowledge, plain HTTP/1.1);
- ``pushsim_apns_token`` -- a function returning a fresh APNs provider token for the
  ``pushsim`` simulator's key.

Example::

    def test_my_sender_prunes_uninstalled_tokens(pushsim):
        device = pushsim.mint("apns")[0]
        pushsim.control("DELETE", f"/_sim/devices/{device['id']}")
        my_sender.send(pushsim.endpoints["apns"], device["token"], ca=pushsim.endpoints["ca_file"])
        assert my_sender.tokens() == []
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulator.testing.handle import SimulatorHandle, apns_provider_token, running_simulator


@pytest.fixture
def pushsim(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path / "pushsim-state") as handle:
        yield handle


@pytest.fixture
def pushsim_plain(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path / "pushsim-state-plain", tls=False) as handle:
        yield handle


@pytest.fixture
def pushsim_apns_token(pushsim: SimulatorHandle) -> Callable[[], str]:
    return lambda: apns_provider_token(pushsim.state_dir)
