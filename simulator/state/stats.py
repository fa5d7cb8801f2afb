"""Counters of what the simulator answered, per provider and outcome (ground truth for reports)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pushsim.clock import Clock


class Stats:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.started_at = clock.time()
        self.counts: Counter[tuple[str, str]] = Counter()

    def count(self, provider: str, outcome: str, n: int = 1) -> None:
        self.counts[(provider, outcome)] += n

    def snapshot(self) -> dict[str, Any]:
        providers: dict[str, dict[str, int]] = {}
        for (provider, outcome), n in sorted(self.counts.items()):
            providers.setdefault(provider, {})[outcome] = n
        for outcomes in providers.values():
            outcomes["total"] = sum(v for k, v in outcomes.items() if k != "total")
        return {"started_at": self.started_at, "now": self.clock.time(), "providers": providers}

    def prometheus(self) -> str:
        lines = [
            "# HELP pushsim_responses_total Provider responses by outcome.",
            "# TYPE pushsim_responses_total counter",
        ]
        for (provider, outcome), n in sorted(self.counts.items()):
            lines.append(
                f'pushsim_responses_total{{provider="{provider}",outcome="{outcome}"}} {n}'
            )
        return "\n".join(lines) + "\n"
