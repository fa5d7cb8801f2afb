"""``pushsim run`` with the sender past one process: batches through
``POST /v1/notifications:batch``, and the bundled ``scale-out`` scenario (three instances
on a throwaway PostgreSQL, one SIGKILLed twice) with its crashes in the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pushsim.pgserver import unavailable

PUSHSIM = [sys.executable, "-m", "pushsim"]
NO_PG = unavailable()

BATCH = """\
name: batch-e2e
duration: 6s
drain_timeout: 15s
population: {devices: {apns: 10, fcm: 10, webpush: 10}, users: 10}
load: {shape: steady, users: 2, rate_per_user: 60}
traffic: {batch: 20, to: {user: 0.7, tokens: 0.3}}
objectives: {max_lost: 0, max_api_error_ratio: 0}
"""


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PUSHSIM, "run", *args, "--no-progress"], capture_output=True, text=True, timeout=timeout
    )


def sent_records(out: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for f in sorted((out / "requests").glob("sent-*.jsonl"))
        for line in f.read_text().splitlines()
        if line.strip()
    ]


@pytest.mark.slow
def test_batches_are_sent_as_one_call_and_judged_one_by_one(tmp_path: Path) -> None:
    scenario = tmp_path / "batch.yaml"
    scenario.write_text(BATCH)
    out = tmp_path / "out"
    done = run(str(scenario), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    sent = sent_records(out)
    assert sent and all(r["b"] == 20 and r["ok"] and r["nid"] for r in sent)
    assert len({r["nid"] for r in sent}) == len(sent)  # each entry its own notification
    stats = (out / "locust_stats.csv").read_text()
    assert "notify batch of 20" in stats


@pytest.mark.slow
@pytest.mark.skipif(NO_PG is not None, reason=f"scale-out needs PostgreSQL: {NO_PG}")
def test_scale_out_quick_passes_with_two_crashes_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run("scale-out", "--quick", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is True
    crashes = [f for f in report["faults"] if f["kind"] == "sender_crash"]
    assert [(f["id"], f["variant"]) for f in crashes] == [
        ("kill-2", "instance 2"),
        ("kill-2-again", "instance 2"),
    ]
    assert all(f["answering_at"] > f["end"] > f["start"] for f in crashes)
    assert len(report["run"]["sender_instances"]) == 3
    assert report["run"]["store"].startswith("postgresql://")
    assert report["measures"]["lost"] == 0
    # requests the killed instance would have answered went to another one
    assert any(r.get("fo") for r in sent_records(out))
