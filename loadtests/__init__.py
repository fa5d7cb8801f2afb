"""The pushsim load harness: scenarios, Locust users, ground-truth measures and reports.

The harness process never imports Locust (it monkey-patches the process with gevent);
Locust runs as its own subprocess on ``loadtests/locust/locustfile.py``.
"""

from __future__ import annotations

DEFAULT_SCENARIO = "smoke"
