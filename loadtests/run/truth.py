"""Ground truth, read back after the load: what the simulator delivered and saw (its control
API), what the sender says it holds, and what the Locust users logged sending.

:func:`marks` notes where the simulator's logs stand before the run, so that
:func:`collect` reads only this run's part of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.judge.measures import GroundTruth
from loadtests.run.client import Client
from loadtests.scenario.model import Scenario

MAX_PAGES = 1000


@dataclass(frozen=True, slots=True)
class Marks:
    deliveries_before: int  # the simulator's delivery count before the run
    feed_since: int  # the token feed's last sequence number before the run


async def marks(client: Client) -> Marks:
    stats = await client.get_json(client.control + "/_sim/stats")
    feed = await client.get_json(client.control + "/_sim/feed?since=0")
    return Marks(int(stats.get("deliveries", 0)), int(feed.get("last_seq", 0)))


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """When the load ran and the run ended (epoch seconds)."""

    started: float
    ended: float
    run_ended: float


async def collect(
    client: Client,
    sc: Scenario,
    out: Path,
    since: Marks,
    population: set[str],
    window: LoadWindow,
    metrics: tuple[dict[str, float] | None, dict[str, float] | None],
    metric_samples: list[tuple[float, dict[str, float]]],
) -> GroundTruth:
    """Everything the measures need, for this run's ``population`` of device ids;
    ``metrics`` is the sender's metrics at the start and the end of the run."""
    control = client.control
    deliveries = await read_pages(client, "/_sim/deliveries", "deliveries", since.deliveries_before)
    feed = [
        e
        for e in await read_pages(client, "/_sim/feed", "events", since.feed_since)
        if e.get("device_id") in population
    ]
    dead_body = await client.get_json(control + "/_sim/dead_tokens", 30)
    dead = [r for r in dead_body.get("tokens", []) if r.get("device_id") in population]
    sim_stats = await client.get_json(control + "/_sim/stats")
    sender_dead = await sender_devices(client, sc.target.devices_dead)
    sender_active = await sender_devices(client, sc.target.devices_active)
    return GroundTruth(
        sent=read_jsonl(out / "requests", "sent-"),
        deliveries=deliveries,
        feed=feed,
        dead_tokens=dead,
        sim_stats=sim_stats,
        sender_dead=sender_dead,
        sender_active=sender_active,
        metrics_start=metrics[0],
        metrics_end=metrics[1],
        metric_samples=metric_samples,
        registrations=read_jsonl(out / "requests", "registrations-"),
        load_started_at=window.started,
        load_ended_at=window.ended,
        ended_at=window.run_ended,
        grace_s=max(3.0, sc.devices.feed_poll_s * 4),
    )


async def read_pages(client: Client, path: str, key: str, since: int) -> list[dict[str, Any]]:
    """Every item of a paged simulator log (``?since=SEQ`` ... ``last_seq``) after ``since``."""
    out: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        body = await client.get_json(f"{client.control}{path}?since={since}", 30)
        items = body.get(key, [])
        out.extend(items)
        new_since = int(body.get("last_seq", since))
        if not items or new_since <= since:
            break
        since = new_since
    return out


async def sender_devices(client: Client, path: str | None) -> list[dict[str, Any]] | None:
    """The sender's registrations listed at ``path`` (None: it lists none there)."""
    if not path:
        return None
    body = await client.try_json(client.sender + path, 30)
    if not isinstance(body, dict) or not isinstance(body.get("devices"), list):
        return None
    return list(body["devices"])


def read_jsonl(directory: Path, prefix: str) -> list[dict[str, Any]]:
    """The records the Locust processes logged (``{prefix}<pid>.jsonl``)."""
    out: list[dict[str, Any]] = []
    if not directory.exists():
        return out
    for p in sorted(directory.glob(f"{prefix}*.jsonl")):
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line from a killed process
    return out


def count_lines(directory: Path, prefix: str) -> int:
    """How many records the Locust processes logged so far (cheap: no parsing)."""
    if not directory.exists():
        return 0
    n = 0
    for p in directory.glob(f"{prefix}*.jsonl"):
        try:
            n += p.read_bytes().count(b"\n")
        except OSError:
            continue
    return n
