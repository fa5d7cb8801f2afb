"""Fuzzing the pure cores (see docs/fuzzing.md): every kept input replays cleanly, and a
bounded coverage-guided run of each target (10,000 inputs, atheris) finds no crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import targets

HERE = Path(__file__).resolve().parent
REGRESSIONS = HERE / "regressions"
RUNS = int(os.environ.get("PUSHSIM_FUZZ_RUNS", "10000"))

try:
    import atheris  # noqa: F401

    WHY = None
except ImportError as exc:  # it builds against the interpreter; a platform may lack a wheel
    WHY = f"atheris is not installed ({exc}): pip install atheris (the test extra has it)"


def kept() -> list[tuple[str, Path]]:
    """(target, input) for every input kept under regressions/<target>/."""
    dirs = [d for d in REGRESSIONS.iterdir() if d.is_dir()] if REGRESSIONS.is_dir() else []
    return sorted((d.name, f) for d in dirs for f in d.iterdir() if f.is_file())


@pytest.mark.parametrize(("name", "path"), kept(), ids=lambda v: getattr(v, "name", v))
def test_kept_inputs_replay_cleanly(name: str, path: Path) -> None:
    targets.TARGETS[name].run(path.read_bytes())


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_seeds_run_cleanly(name: str) -> None:
    target = targets.TARGETS[name]
    for seed in [b"", *target.seeds()]:
        target.run(seed)


@pytest.mark.skipif(WHY is not None, reason=str(WHY))
@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_bounded_fuzz_run_finds_no_crash(name: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "fuzz.py"),
            name,
            f"-runs={RUNS}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            str(tmp_path / "corpus"),
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-"))]
    assert done.returncode == 0 and not crashes, (crashes, done.stderr[-4000:])


def test_unicode_digits_are_not_numbers() -> None:
    """Found by the apns_headers target: ``str.isdigit`` holds for "①" and "٣", which
    ``int`` refuses; every header and query read as a number checks for ASCII digits."""
    from simulator.frontdoor.names import split_authority
    from simulator.providers.apns.headers import HeaderError, parse_headers
    from simulator.providers.webpush.declarative import display

    for digit in ("①", "٣", "²"):
        got = parse_headers([("apns-expiration", digit), ("apns-topic", "com.example.pushsim")])
        assert isinstance(got, HeaderError) and got.reason == "BadExpirationDate"
        assert split_authority(f"localhost:{digit}") == ("localhost", None)
        display({"web_push": 8030, "notification": {"title": "t", "app_badge": digit}})
