"""The pushsim load harness: scenarios, Locust users, ground-truth measures and reports.

The harness process never imports Locust (it monkey-patches the process with gevent);
Locust runs as its own subprocess on ``loadtests/locustfile.py``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SCENARIOS_DIR = PACKAGE_DIR.parent / "scenarios"
DEFAULT_SCENARIO = "smoke"
