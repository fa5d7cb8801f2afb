"""Node.js for the tests that drive real node clients: node itself, and npm's web-push.

web-push is installed into ``tests/node/node_modules`` (gitignored) on first use; a test
skips, saying why, only when node/npm are not on PATH or that install fails.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"


def require_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    return node


def install_web_push() -> None:
    """Install the npm web-push package into tests/node/node_modules when it is missing."""
    require_node()
    if (NODE_DIR / "node_modules" / "web-push" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not on PATH (needed to install web-push)")
    try:
        proc = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--no-package-lock",
                "--prefix",
                str(NODE_DIR),
            ],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=180,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm install web-push timed out")
    if proc.returncode != 0 or not (NODE_DIR / "node_modules" / "web-push").is_dir():
        pytest.skip(f"npm install web-push failed: {proc.stderr.strip()[-500:]}")
