"""``pushsim run --target-cmd``: the user's sender, configured as in production, judged.

The reference sender stands in for the user's: its config names only the real providers
(``https://api.push.apple.com``, ``https://fcm.googleapis.com``; no CA file), and it runs
inside the namespace ``--target-cmd`` makes, so the harness drives and judges it with no
URL rewired on either side.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simulator.netns.namespace import unavailable

WHY = unavailable()
ROOT = Path(__file__).resolve().parents[3]
PUSHSIM = [sys.executable, "-m", "pushsim"]

PRODUCTION_SENDER = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path

    state = Path(os.environ["PUSHSIM_STATE_DIR"])  # where the run's credentials are
    apns = json.loads((state / "apns" / "apns.json").read_text())
    config = {
        "apns": {
            "url": "https://api.push.apple.com",
            "sandbox_url": "https://api.sandbox.push.apple.com",
            "key_file": str(state / "apns" / f"AuthKey_{apns['key_id']}.p8"),
            "team_id": apns["team_id"],
            "topic": apns["bundle_id"],
        },
        "fcm": {
            "url": "https://fcm.googleapis.com",
            "service_account_file": str(state / "fcm" / "service-account.json"),
        },
        "webpush": {"vapid_file": str(state / "webpush" / "vapid.json")},
    }
    here = Path(sys.argv[1])
    (here / "sender.json").write_text(json.dumps(config))
    os.execv(sys.executable, [
        sys.executable, "-m", "pushsim", "sender", "--config", str(here / "sender.json"),
        "--port", sys.argv[2], "--db", str(here / "sender.db"),
    ])
    """
)


@pytest.mark.skipif(WHY is not None, reason=f"pushsim exec: {WHY}")
def test_quick_smoke_with_a_production_configured_sender(tmp_path: Path) -> None:
    script = tmp_path / "production_sender.py"
    script.write_text(PRODUCTION_SENDER)
    out = tmp_path / "out"
    # any port: inside its own namespace the sender's loopback is its alone
    command = f"{sys.executable} {script} {tmp_path} 18080"
    target = ["--target", "http://127.0.0.1:18080", "--target-cmd", command]
    done = subprocess.run(
        [*PUSHSIM, "run", "smoke", "--quick", "--no-progress", "--out", str(out), *target],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True
    sent = json.loads((tmp_path / "sender.json").read_text())
    assert sent["apns"]["url"] == "https://api.push.apple.com"  # nothing rewired
    assert "CancelledError" not in done.stderr


def test_target_cmd_needs_target_url(tmp_path: Path) -> None:
    done = subprocess.run(
        [*PUSHSIM, "run", "smoke", "--quick", "--out", str(tmp_path), "--target-cmd", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "--target-cmd needs --target URL" in done.stderr
