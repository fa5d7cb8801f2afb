"""``pushsim simulator`` flags as a child process sees them: bundled scenario names, --port."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from simulator.testing.handle import simulator_process


def simulator(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pushsim simulator --state-dir STATE ARGS...`` for a start that should be refused."""
    return subprocess.run(
        [sys.executable, "-m", "pushsim", "simulator", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("name", ["faults-demo", "smoke"])
def test_scenario_takes_a_bundled_name_as_pushsim_run_does(tmp_path: Path, name: str) -> None:
    with simulator_process(
        tmp_path / "state", "--no-tls", "--scenario", name, stderr=subprocess.PIPE
    ) as (_, endpoints):
        with urllib.request.urlopen(endpoints["control"] + "/_sim/faults", timeout=5) as r:
            plan = json.loads(r.read())
    ids = {f["id"] for f in plan["faults"]}
    assert ids == ({"apns-outage", "fcm-throttle", "churn"} if name == "faults-demo" else set())


def test_a_scenario_that_is_neither_a_file_nor_a_bundled_name_is_refused(tmp_path: Path) -> None:
    done = simulator(tmp_path / "s", "--scenario", "no-such-scenario")
    assert done.returncode == 2
    assert "--scenario: no such file or bundled scenario no-such-scenario" in done.stderr


@pytest.mark.parametrize("port", [65530, 65532, 65535, 70000, -1])
def test_port_leaves_room_for_every_listener(tmp_path: Path, port: int) -> None:
    done = simulator(tmp_path / "s", "--port", str(port))
    assert done.returncode == 2
    expected = f"--port: expected 0 or 1-65529 (the listeners take N..N+6), got {port}"
    assert expected in done.stderr
    assert not (tmp_path / "s").exists()  # refused before anything is created


def _free_run_of_ports(count: int) -> int:
    """A first port N with N..N+count-1 all free on 127.0.0.1 just now."""
    import random
    import socket

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no run of free loopback ports found")


def test_port_n_numbers_every_listener_in_order(tmp_path: Path) -> None:
    from simulator.listeners import PORT_ORDER

    base = _free_run_of_ports(len(PORT_ORDER))
    with simulator_process(tmp_path / "state", "--no-tls", "--port", str(base)) as (_, ep):
        got = {name: int(ep[name].rsplit(":", 1)[1]) for name in PORT_ORDER if name in ep}
    assert got == {name: base + i for i, name in enumerate(PORT_ORDER)}
