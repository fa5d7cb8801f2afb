"""Requests per second and latency percentiles from two readings of the tap's counters (pure).

A :class:`Reading` is a frozen copy of the counters at one moment of an injected clock;
everything here is a function of two readings, so a test can make them by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from simulator.dashboard.meter import LATENCY_BOUNDS, Meter

QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


@dataclass(frozen=True, slots=True)
class Reading:
    """Counters at ``at`` (monotonic seconds): per provider, (status, reason) -> count and
    latency bucket counts (see :data:`~simulator.dashboard.meter.LATENCY_BOUNDS`)."""

    at: float
    counts: Mapping[str, Mapping[tuple[str, str], int]] = field(default_factory=dict)
    latency: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


def read(meter: Meter, at: float) -> Reading:
    return Reading(
        at,
        {p: dict(m.counts) for p, m in meter.providers.items()},
        {p: tuple(m.latency) for p, m in meter.providers.items()},
    )


def _delta(
    cur: Mapping[tuple[str, str], int], prev: Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], int]:
    return {k: n - prev.get(k, 0) for k, n in cur.items() if n - prev.get(k, 0) > 0}


def status_class(status: str) -> str:
    """``2xx``, ``4xx``, ``5xx`` for a status code; other answers (reset, hang...) as they are."""
    return f"{status[0]}xx" if status.isdigit() and len(status) == 3 else status


def rates(prev: Reading | None, cur: Reading) -> dict[str, dict[str, object]]:
    """Per provider: ``total`` requests/s, by ``status`` and by ``reason`` (``"503 Shutdown"``),
    over the time between the readings. No earlier reading, or no time between: all zero."""
    dt = cur.at - prev.at if prev is not None else 0.0
    out: dict[str, dict[str, object]] = {}
    for provider, counts in cur.counts.items():
        before = prev.counts.get(provider, {}) if prev is not None else counts
        moved = _delta(counts, before) if dt > 0 else {}
        by_status: dict[str, float] = {}
        by_reason: dict[str, float] = {}
        for (status, reason), n in moved.items():
            by_status[status] = by_status.get(status, 0.0) + n / dt
            label = f"{status} {reason}" if reason else status
            by_reason[label] = by_reason.get(label, 0.0) + n / dt
        out[provider] = {
            "total": round(sum(by_status.values()), 3),
            "status": {k: round(v, 3) for k, v in sorted(by_status.items())},
            "reason": {k: round(v, 3) for k, v in sorted(by_reason.items())},
        }
    return out


def percentiles(
    cur: Iterable[int],
    prev: Iterable[int] | None = None,
    quantiles: tuple[tuple[str, float], ...] = QUANTILES,
) -> dict[str, float] | None:
    """Latency quantiles in milliseconds from bucket counts (minus an earlier reading's),
    interpolated linearly inside the bucket; None when nothing was measured in between."""
    now = list(cur)
    before = list(prev) if prev is not None else [0] * len(now)
    counts = [a - b for a, b in zip(now, before, strict=True)]
    total = sum(counts)
    if total <= 0:
        return None
    out: dict[str, float] = {}
    for name, q in quantiles:
        out[name] = round(_quantile(counts, total, q) * 1000, 3)
    return out


def _quantile(counts: list[int], total: int, q: float) -> float:
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            low = LATENCY_BOUNDS[i - 1] if i > 0 else 0.0
            high = LATENCY_BOUNDS[i] if i < len(LATENCY_BOUNDS) else LATENCY_BOUNDS[-1]
            return low + (high - low) * max(0.0, rank - seen) / n
        seen += n
    return LATENCY_BOUNDS[-1]


def lifetime_totals(cur: Reading) -> dict[str, dict[str, int]]:
    """Per provider, every answer so far by status (and ``total``)."""
    out: dict[str, dict[str, int]] = {}
    for provider, counts in cur.counts.items():
        by: dict[str, int] = {}
        for (status, _reason), n in counts.items():
            by[status] = by.get(status, 0) + n
        by = dict(sorted(by.items()))
        by["total"] = sum(by.values())
        out[provider] = by
    return out
