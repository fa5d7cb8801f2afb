"""``pushsim simulator --workers 2``: both processes answer on one port and share token truth."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from h2clients import H2Client, make_token

from simulator.testing.handle import simulator_process

ROOT = Path(__file__).resolve().parents[2]


def control(endpoints: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(endpoints["control"] + path, data=data, method=method)
    req.add_header("content-type", "application/json")  # a write says JSON (control_guard)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def test_two_workers_share_tokens_and_deliveries(tmp_path: Path) -> None:
    state = tmp_path / "state"
    sim_args = ("--workers", "2", "--seed", "3")
    with simulator_process(state, *sim_args, stderr=subprocess.PIPE) as (_, endpoints):
        live, dead = control(endpoints, "POST", "/_sim/devices", {"provider": "apns", "count": 2})[
            "devices"
        ]
        control(endpoints, "DELETE", f"/_sim/devices/{dead['id']}")
        time.sleep(0.3)  # one sync round reaches the worker
        token = make_token(state)
        headers = [("authorization", f"bearer {token}"), ("apns-topic", "com.example.pushsim")]
        statuses: list[int] = []
        reasons: list[str] = []
        for _ in range(12):  # the kernel spreads connections over both processes
            c = H2Client(endpoints["apns"], endpoints["ca_file"])
            statuses.append(c.request(f"/3/device/{live['token']}", headers)[0])
            status, _, body = c.request(f"/3/device/{dead['token']}", headers)
            reasons.append(f"{status} {json.loads(body)['reason']}")
            c.close()
        assert statuses == [200] * 12
        assert set(reasons) == {"410 Unregistered"}
        time.sleep(0.3)
        inbox = control(endpoints, "GET", f"/_sim/devices/{live['id']}/inbox")["messages"]
        assert len(inbox) == 12
        stats = control(endpoints, "GET", "/_sim/stats")["providers"]["apns"]
        assert stats["delivered"] == 12 and stats["Unregistered"] == 12
