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


@pytest.mark.parametrize("port", [65532, 65534, 65535, 70000, -1])
def test_port_leaves_room_for_all_five_listeners(tmp_path: Path, port: int) -> None:
    done = simulator(tmp_path / "s", "--port", str(port))
    assert done.returncode == 2
    expected = f"--port: expected 0 or 1-65531 (the listeners take N..N+4), got {port}"
    assert expected in done.stderr
    assert not (tmp_path / "s").exists()  # refused before anything is created
