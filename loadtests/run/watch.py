"""What a run shows and samples while its load runs and drains: the status line, the
sender's metrics over time, the dashboard's progress, and waiting for the queue to empty."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from loadtests.run import truth
from loadtests.run.client import Client
from loadtests.run.progress import Progress
from loadtests.scenario.model import Scenario


@dataclass
class Watch:
    client: Client
    sc: Scenario
    out: Path
    progress: Progress
    info: dict[str, Any]  # the run's info: deliveries_before in, drain_timed_out out
    endpoints: dict[str, str]
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    async def sample_metrics(self) -> dict[str, float] | None:
        """The sender's metrics now, kept for the report's retries and queue charts."""
        metrics = await self.client.sender_metrics()
        if metrics is not None:
            self.samples.append((time.time(), metrics))
        return metrics

    async def status_line(self, started: float, users_hint: int) -> str:
        metrics = await self.sample_metrics()
        stats = await self.client.try_json(self.client.control + "/_sim/stats", 2)
        delivered = (
            int(stats.get("deliveries", 0)) - self.info.get("deliveries_before", 0) if stats else 0
        )
        sent = truth.count_lines(self.out / "requests", "sent-")
        el = time.monotonic() - started
        parts = [
            f"[{el:5.1f}s/{self.sc.duration:g}s] {self.sc.name}: users {users_hint}",
            f"notifications {sent}",
            f"device deliveries {delivered}",
        ]
        if metrics is not None:
            q = metrics.get("pushsim_sender_queue_depth")
            if q is not None:
                parts.append(f"queue {int(q)}")
            r = metrics.get("pushsim_sender_retries_total")
            if r is not None:
                parts.append(f"retries {int(r)}")
        await self.post_progress("load", el, users=users_hint, sent=sent, delivered=delivered)
        return "  ".join(parts)

    async def post_progress(self, phase: str, elapsed: float, **counts: int) -> None:
        """The run's progress for the simulator's dashboard, when it serves one (see
        :mod:`simulator.dashboard.progress`): each objective's running value where known."""
        if "dashboard" not in self.endpoints:
            return
        from simulator.dashboard import progress as dash

        known = dash.running_measures(elapsed, counts.get("sent", 0), counts.get("delivered", 0))
        objectives = [
            (o.name, o.kind.op, o.required, o.kind.unit, o.kind.measure) for o in self.sc.objectives
        ]
        doc = dash.progress_document(
            self.sc.name, phase, elapsed, self.sc.duration, dash.valued(objectives, known), **counts
        )
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self.client.http.post(f"{self.client.control}/_sim/run/progress", json=doc):
                pass

    async def drain(self) -> None:
        """Wait (bounded) until the sender's queue is empty and deliveries stop arriving."""
        deadline = time.monotonic() + self.sc.drain_timeout
        stable_since: float | None = None
        last = -1
        while time.monotonic() < deadline:
            stats = await self.client.try_json(self.client.control + "/_sim/stats", 2)
            count = int(stats.get("deliveries", 0)) if stats else -1
            metrics = await self.sample_metrics()
            queue = metrics.get("pushsim_sender_queue_depth", 0.0) if metrics is not None else 0.0
            if queue == 0 and count == last:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= 1.0:
                    return
            else:
                stable_since = None
            last = count
            self.progress.show(f"draining: queue {int(queue)}, simulator deliveries {count}")
            await asyncio.sleep(0.25)
        self.progress.say(
            f"pushsim run: the sender did not drain within {self.sc.drain_timeout:g}s"
        )
        self.info["drain_timed_out"] = True
