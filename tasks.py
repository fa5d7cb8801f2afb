#!/usr/bin/env python3
"""One-command set-up and run, for a fresh clone with only Python 3.11+.

    python3 tasks.py run [pushsim run args...]   # set up .venv, run the default scenario end to end
    python3 tasks.py test [pytest args...]       # set up .venv, run the test suite
    python3 tasks.py bench [args...]             # set up .venv, run the simulator benchmark

It creates ``.venv`` beside this file (once), installs pushsim with its test extra into
it (again whenever pyproject.toml changed), then runs the job inside it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run by whatever python3 the user has
        sys.exit(f"pushsim needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print("tasks: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".pushsim-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        print("tasks: installing pushsim and its test dependencies into .venv", flush=True)
        subprocess.run([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(PY), "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]"], check=True)
        stamp.write_text(digest)


def ensure_h2load() -> None:
    """h2load (Debian's nghttp2-client) drives the benchmarks and a conformance test."""
    if shutil.which("h2load") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    print("tasks: installing h2load (nghttp2-client)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "nghttp2-client"],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )


def ensure_postgresql() -> None:
    """PostgreSQL's server binaries (Debian's postgresql) for the sender's PostgreSQL store:
    its tests and ``store: postgresql`` scenarios start a throwaway server with them."""
    if list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or shutil.which("initdb"):
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return
    print("tasks: installing postgresql", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "postgresql"],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )


def ensure_chromium() -> None:
    """Chromium (Debian's) for the dashboard's browser tests; Playwright drives it as it is."""
    if os.path.exists("/usr/bin/chromium") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    print("tasks: installing chromium", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium"],
        env=env,
        check=False,
        stdout=subprocess.DEVNULL,
    )


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test", "bench"):
        print(__doc__)
        return 2
    job, rest = sys.argv[1], sys.argv[2:]
    ensure_venv()
    if job == "run":
        ensure_postgresql()
        return subprocess.call([str(BIN / "pushsim"), "run", *rest], cwd=ROOT)
    if job == "bench":
        ensure_h2load()
        return subprocess.call(
            [str(PY), str(ROOT / "benchmarks" / "simulator_bench.py"), *rest], cwd=ROOT
        )
    ensure_h2load()
    ensure_postgresql()
    ensure_chromium()
    return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
