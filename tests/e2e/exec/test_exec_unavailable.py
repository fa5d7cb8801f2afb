"""Where no namespace can be made, ``pushsim exec`` says so in one line and exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_without_unshare_exec_says_so_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "pushsim", "exec", "--state-dir", str(tmp_path / "s"), "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(empty)},
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "no 'unshare' command" in line and "pushsim hosts" in line
    assert not (tmp_path / "s").exists()  # nothing started


def test_exec_without_a_command_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pushsim", "exec", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "expected -- COMMAND" in done.stderr
