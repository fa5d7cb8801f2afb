"""``pushsim run --hosts``: the bundled smoke scenario with the simulator, the sender and
Locust each on a host of its own (network namespaces on a private link), passing, with
bytes counted on every host's interface and no namespace left behind."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.run.hosts import SUBNET, unavailable
from pushsim.privatelink import NETNS_DIR, PREFIX

WHY = unavailable()
PUSHSIM = [sys.executable, "-m", "pushsim"]


def namespaces_of(pid: int) -> list[str]:
    return sorted(p.name for p in NETNS_DIR.glob(f"{PREFIX}{pid}-*")) if NETNS_DIR.is_dir() else []


@pytest.mark.slow
@pytest.mark.skipif(WHY is not None, reason=f"pushsim run --hosts: {WHY}")
def test_quick_smoke_runs_across_hosts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*PUSHSIM, "run", "smoke", "--quick", "--hosts", "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout + stderr
    assert namespaces_of(proc.pid) == []  # torn down after the run

    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True
    run = report["run"]
    assert set(run["hosts"]) == {"harness", "simulator", "sender", "locust"}
    assert all(ipaddress.ip_address(a) in SUBNET for a in run["hosts"].values())
    assert run["sender"].startswith(f"http://{run['hosts']['sender']}:")
    assert run["endpoints"]["apns"].startswith(f"https://{run['hosts']['simulator']}:")
    traffic = run["link_traffic"]
    for role in ("simulator", "sender", "locust", "harness"):  # every part sent and received
        assert traffic[role]["tx_bytes"] > 10_000 and traffic[role]["rx_bytes"] > 10_000, role


@pytest.mark.skipif(os.geteuid() == 0, reason="root may make hosts")
def test_hosts_without_root_says_why() -> None:
    done = subprocess.run(
        [*PUSHSIM, "run", "smoke", "--hosts"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--hosts needs root" in done.stderr
