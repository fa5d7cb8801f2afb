"""``pushsim run --dashboard``: the run's simulator serves the dashboard, the harness prints its
URL and posts its progress, and the page shows the scenario and its objectives (Chromium)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import ARGS, CHROMIUM, shoot

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (tasks.py installs Debian's chromium when run as root)",
        allow_module_level=True,
    )


PUSHSIM_RUN = [sys.executable, "-m", "pushsim", "run"]


def _wait_for(path: Path, proc: subprocess.Popen[bytes], seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            doc: dict[str, Any] = json.loads(path.read_text())
            if "dashboard" in doc:
                return doc
        assert proc.poll() is None, "pushsim run ended before its simulator wrote endpoints.json"
        time.sleep(0.1)
    raise AssertionError(f"no dashboard in {path} within {seconds} s")


def test_run_progress_on_the_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*PUSHSIM_RUN, "smoke", "--quick", "--dashboard", "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            ep = _wait_for(out / "simulator" / "endpoints.json", proc, 60)
            with sync_api.sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page = browser.new_context(
                    ignore_https_errors=True, viewport={"width": 1440, "height": 1100}
                ).new_page()
                page.goto(f"{ep['dashboard']}/?token={ep['dashboard_token']}")
                page.wait_for_selector("#run:not(.hidden)", timeout=60_000)
                assert page.inner_text("#run-name") == "smoke"
                page.wait_for_selector("#objectives >> text=min_throughput_per_s")
                page.wait_for_selector("#objectives td.ok", timeout=20_000)  # a running value holds
                time.sleep(2)
                shoot(page, tmp_path, "run")
                browser.close()
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    text = log.read_text()
    assert f"dashboard at {ep['dashboard']}/?token={ep['dashboard_token']}" in text
