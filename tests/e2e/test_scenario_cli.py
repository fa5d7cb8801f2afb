"""`pushsim run --check` and `pushsim scenarios` as commands, in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scenario_samples import GOOD

from scenarios import SCENARIOS_DIR, bundled


def test_check_and_scenarios_commands(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("rate_per_user: 3", "rate_per_user: fast"))
    cli = [sys.executable, "-m", "pushsim"]
    ok = subprocess.run(
        [*cli, "run", "--check", str(SCENARIOS_DIR / "smoke.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok: smoke" in ok.stdout
    no = subprocess.run(
        [*cli, "run", "--check", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert no.returncode == 2
    assert f"{bad}:10: load.rate_per_user: expected a number" in no.stderr
    listing = subprocess.run([*cli, "scenarios"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    assert names == sorted(p.stem for p in bundled())
