"""The harness's HTTP: JSON from the simulator's control API and the sender's API, on loopback."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from loadtests.judge.measures import parse_prometheus
from loadtests.run import HarnessError
from loadtests.run.fleet import combine


@dataclass
class Client:
    """One session for a run; ``control`` and ``sender`` are set once those parts are up."""

    http: aiohttp.ClientSession
    metrics_path: str | None = None  # the sender's Prometheus page, if it has one
    control: str = ""  # the simulator's control API, scheme://host:port
    sender: str = ""  # the sender's API, scheme://host:port (its first instance)
    senders: list[str] = field(default_factory=list)  # every instance, when several
    carried: dict[str, float] = field(default_factory=dict)  # killed instances' counters

    async def get_json(self, url: str, limit_s: float = 10.0) -> Any:
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=limit_s)) as r:
            if r.status != 200:
                raise HarnessError(f"GET {url}: {r.status} {(await r.text())[:200]}")
            return await r.json(content_type=None)

    async def try_json(self, url: str, limit_s: float = 5.0) -> Any:
        """Like :meth:`get_json`, but None when the answer is not a 200 with JSON."""
        try:
            return await self.get_json(url, limit_s)
        except (aiohttp.ClientError, TimeoutError, HarnessError, ValueError):
            return None

    async def sender_metrics(self) -> dict[str, float] | None:
        """The sender's metrics now (None: it has none, or did not answer); with several
        instances, theirs combined (see :func:`loadtests.run.fleet.combine`)."""
        if len(self.senders) <= 1:
            return await self.instance_metrics(self.sender)
        answers = await asyncio.gather(*(self.instance_metrics(u) for u in self.senders))
        return combine(list(answers), self.carried)

    async def instance_metrics(self, url: str) -> dict[str, float] | None:
        """One sender instance's metrics (None: it has none, or did not answer)."""
        if not self.metrics_path:
            return None
        try:
            async with self.http.get(
                url + self.metrics_path, timeout=aiohttp.ClientTimeout(total=5)
            ) as r:
                if r.status != 200:
                    return None
                return parse_prometheus(await r.text())
        except (aiohttp.ClientError, TimeoutError):
            return None
