"""``pushsim simulator --dashboard``: the URL with its token is printed at start and written to
endpoints.json; the process stops cleanly with the dashboard open."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from simulator.testing.handle import simulator_process


def test_simulator_dashboard_flag(tmp_path: Path) -> None:
    log = tmp_path / "simulator.log"
    with log.open("wb") as err:
        with simulator_process(tmp_path / "state", "--dashboard", stderr=err) as (proc, ep):
            url, token = ep["dashboard"], ep["dashboard_token"]
            ctx = ssl.create_default_context(cafile=ep["ca_file"])
            with httpx.Client(http2=True, verify=ctx) as client:
                r = client.get(f"{url}/api/vocabulary", headers={"x-pushsim-token": token})
                assert r.status_code == 200 and r.http_version == "HTTP/2"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
    text = log.read_text()
    assert f"pushsim dashboard: {url}/?token={token}" in text
    assert "Traceback" not in text and "Running on" not in text


def test_dashboard_port_is_checked(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pushsim",
            "simulator",
            "--state-dir",
            str(tmp_path),
            "--dashboard-port",
            "70000",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and "--dashboard-port: expected 0-65535" in out.stderr
