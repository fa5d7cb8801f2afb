"""Samples in, the page's document and its differences out: what the event stream carries (pure).

Once per tick the edge gathers a :class:`Sample` (counter reading, connections, the fault
plan and its windows, the token feed, the dead-token sends, run progress). :meth:`Board.step`
turns it into one point of history (rates, latency, connections per provider) and a
document of sections; it returns the *update*: the newest point plus only the sections that
changed since the last tick. A page that has just connected gets :meth:`Board.snapshot`
first: every section and the whole history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simulator.dashboard.rates import Reading, lifetime_totals, percentiles, rates

HISTORY = 180  # points kept (one per tick)
LATENCY_WINDOW = 5.0  # seconds of answers behind each latency percentile


@dataclass(frozen=True, slots=True)
class Sample:
    reading: Reading  # the tap's counters (``reading.at``: monotonic seconds)
    run_time: float  # seconds on the run clock (fault windows are placed on it)
    wall: float  # epoch seconds
    connections: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)  # the plan, with states
    windows: list[dict[str, Any]] = field(default_factory=list)  # windows opened so far
    feed: list[dict[str, Any]] = field(default_factory=list)  # newest token events first
    dead: dict[str, Any] = field(default_factory=dict)  # dead-token sends: totals and the top
    stats: dict[str, Any] = field(default_factory=dict)  # the simulator's counters
    progress: dict[str, Any] | None = None  # a run's progress document, if one was posted


# the document's sections that are sent whenever they change
SECTIONS = ("connections", "faults", "windows", "feed", "dead", "stats", "progress", "totals")


class Board:
    def __init__(self, history: int = HISTORY, latency_window: float = LATENCY_WINDOW) -> None:
        self.points: deque[dict[str, Any]] = deque(maxlen=history)
        self.readings: deque[Reading] = deque()
        self.latency_window = latency_window
        self.doc: dict[str, Any] = {name: None for name in SECTIONS}
        self.doc["now"] = None
        self.ticks = 0

    def _latency_base(self, cur: Reading) -> Reading | None:
        """The oldest kept reading within the latency window (older ones are dropped)."""
        while len(self.readings) > 1 and cur.at - self.readings[1].at >= self.latency_window:
            self.readings.popleft()
        return self.readings[0] if self.readings else None

    def _point(self, sample: Sample) -> dict[str, Any]:
        cur = sample.reading
        prev = self.readings[-1] if self.readings else None
        base = self._latency_base(cur)
        per = rates(prev, cur)
        providers: dict[str, Any] = {}
        for provider in sorted(set(per) | set(sample.connections)):
            entry = dict(per.get(provider, {"total": 0.0, "status": {}, "reason": {}}))
            lat = cur.latency.get(provider)
            entry["latency_ms"] = (
                percentiles(lat, base.latency.get(provider) if base is not None else None)
                if lat is not None
                else None
            )
            entry.update(sample.connections.get(provider, {}))
            providers[provider] = entry
        self.readings.append(cur)
        return {
            "t": round(sample.run_time, 3),
            "wall": round(sample.wall, 3),
            "providers": providers,
        }

    def step(self, sample: Sample) -> dict[str, Any]:
        """Take a tick's sample; return the update to send (see the module's docstring)."""
        point = self._point(sample)
        self.points.append(point)
        self.ticks += 1
        new: dict[str, Any] = {
            "connections": {k: dict(v) for k, v in sample.connections.items()},
            "faults": sample.faults,
            "windows": sample.windows,
            "feed": sample.feed,
            "dead": sample.dead,
            "stats": sample.stats,
            "progress": sample.progress,
            "totals": lifetime_totals(sample.reading),
        }
        update: dict[str, Any] = {"now": self._now(sample), "point": point}
        update.update(changed(self.doc, new))
        self.doc.update(new)
        self.doc["now"] = update["now"]
        return update

    @staticmethod
    def _now(sample: Sample) -> dict[str, float]:
        return {"run_time": round(sample.run_time, 3), "wall": round(sample.wall, 3)}

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to draw itself from nothing."""
        return {**self.doc, "series": list(self.points)}


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The sections of ``new`` that differ from ``old`` (plain JSON-like values)."""
    return {k: v for k, v in new.items() if k not in old or old[k] != v}


def apply_update(doc: dict[str, Any], update: Mapping[str, Any], history: int = HISTORY) -> None:
    """What the page does with an update (kept here so a test can check a page would end up
    with the board's own document)."""
    series = doc.setdefault("series", [])
    for key, value in update.items():
        if key == "point":
            series.append(value)
            del series[: max(0, len(series) - history)]
        else:
            doc[key] = value
