"""A plain (not editable) install works outside the checkout and ships the scenario library.

The wheel is built from a copy of the source (so no earlier build's leftovers can slip
in), installed with ``pip install --target``, and run with only that directory on
``PYTHONPATH`` from a directory outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scenarios import bundled
from simulator.testing.handle import ROOT

pytestmark = pytest.mark.timeout(300)

LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "out", "state", "tests", "benchmarks",
    "node_modules", "__pycache__", ".*_cache",
)  # fmt: skip


def pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "-q", *args], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding pushsim installed from its wheel (dependencies from this venv)."""
    base = tmp_path_factory.mktemp("packaging")
    source, wheels, target = base / "source", base / "wheels", base / "target"
    shutil.copytree(ROOT, source, ignore=LEFT_OUT)
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source))
    (wheel,) = wheels.glob("pushsim-*.whl")
    pip("install", "--no-deps", "--target", str(target), str(wheel))
    return target


def outside(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_installed_package_lists_the_bundled_scenarios(installed: Path, tmp_path: Path) -> None:
    where = outside(installed, tmp_path, "-c", "import scenarios; print(scenarios.__file__)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed)  # not the checkout's copy
    listing = outside(installed, tmp_path, "-m", "pushsim", "scenarios")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    assert names == [p.stem for p in bundled()]
    assert {"smoke", "faults-demo"} <= set(names)
