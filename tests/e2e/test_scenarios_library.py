"""Every bundled scenario passes on the reference sender, as CI runs it.

Each scenario runs through the real front door, ``pushsim run NAME --quick --out DIR``
(simulator, sender and Locust as their own processes), and must exit 0. Scenarios run
``PUSHSIM_LIBRARY_JOBS`` at a time (default 2: each run's processes mostly wait on each
other, and every port is picked by the OS, so runs share nothing); ``throughput`` runs on
its own afterwards, since it measures how much the machine can push. A failure shows the
objectives that failed, as measured, and the tail of the run's output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from scenarios import bundled

PER_SCENARIO_TIMEOUT = 150.0  # seconds: a quick run takes 15-30 s
JOBS = max(1, int(os.environ.get("PUSHSIM_LIBRARY_JOBS", "2")))
NAMES = [p.stem for p in bundled()]
ALONE = ("throughput",)  # CPU-bound: measured without another scenario on the same cores

pytestmark = pytest.mark.timeout(600)


@dataclass
class Run:
    name: str
    returncode: int
    seconds: float
    output: str
    out: Path

    def explain(self) -> str:
        lines = [f"{self.name}: exit {self.returncode} after {self.seconds:.0f} s"]
        try:
            report = json.loads((self.out / "report.json").read_text())
        except (OSError, ValueError):
            report = None
        if report is not None:
            for o in report.get("objectives", []):
                if not o.get("passed"):
                    lines.append(f"  {o['name']}: {o.get('detail')}")
        lines.append("  output (last lines):")
        lines += ["    " + ln for ln in self.output.splitlines()[-25:]]
        return "\n".join(lines)


def run_scenario(name: str, root: Path) -> Run:
    out = root / name
    cmd = [sys.executable, "-m", "pushsim", "run", name, "--quick", "--out", str(out)]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=PER_SCENARIO_TIMEOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        code, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = -1
        output = f"timed out after {PER_SCENARIO_TIMEOUT:.0f} s\n" + str(exc.stdout or "")
    return Run(name, code, time.monotonic() - started, output, out)


def test_every_bundled_scenario_passes_on_the_reference_sender(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        runs = list(
            pool.map(lambda n: run_scenario(n, tmp_path), [n for n in NAMES if n not in ALONE])
        )
    runs += [run_scenario(n, tmp_path) for n in NAMES if n in ALONE]
    summary = ", ".join(f"{r.name} {r.seconds:.0f}s" for r in runs)
    failed = [r for r in runs if r.returncode != 0]
    assert not failed, f"({summary})\n" + "\n\n".join(r.explain() for r in failed)
    for r in runs:
        report = json.loads((r.out / "report.json").read_text())
        assert report["passed"] is True
        assert (r.out / "junit.xml").exists() and (r.out / "report.html").exists()
        if r.name == "smoke":
            # FCM topic sends are judged against the devices subscribed through the sender
            m = report["measures"]
            assert m["topic_sends"] > 0 and m["topic_deliverable"] > 0
            assert m["topic_delivered"] == m["topic_deliverable"]
        if r.name == "throughput" and report["cpu"].get("available"):
            # where the time went: every part sampled, and the simulator is not the limit
            cpu = report["cpu"]
            assert {"simulator", "sender", "locust"} <= set(report["series"]["cpu"])
            assert cpu["verdict"]["bottleneck"] != "simulator", cpu["verdict"]["text"]
            assert report["measures"]["simulator_cpu_share"] is not None
