"""Per-second time series of a run for the report's charts (pure), on one time axis:
seconds since the load started."""

from __future__ import annotations

import math
from typing import Any

from loadtests.judge.measures import GroundTruth, metric, normalize_token, percentile


def series(gt: GroundTruth, bucket_s: float = 1.0) -> dict[str, Any]:
    """Per-second series on one time axis (seconds since the load started)."""
    t0 = gt.load_started_at or (min((float(s["t"]) for s in gt.sent), default=0.0))
    end = max(gt.ended_at, gt.load_ended_at, t0 + 1)
    n = max(1, min(3600, math.ceil((end - t0) / bucket_s)))

    def idx(t: float) -> int | None:
        i = int((t - t0) // bucket_s)
        return i if 0 <= i < n else None

    sent = [0] * n
    errors = [0] * n
    lat: list[list[float]] = [[] for _ in range(n)]
    for s in gt.sent:
        i = idx(float(s["t"]))
        if i is None:
            continue
        sent[i] += 1
        if not s.get("ok"):
            errors[i] += 1
        lat[i].append(float(s.get("ms", 0.0)))
    corrs = {str(s.get("c")) for s in gt.sent}
    delivered = [0] * n
    for d in gt.deliveries:
        if d.get("correlation_id") in corrs:
            i = idx(float(d.get("at", 0.0)))
            if i is not None:
                delivered[i] += 1
    retries: list[float | None] = [None] * n
    queue: list[float | None] = [None] * n
    prev: float | None = None
    for t, sample in gt.metric_samples:
        i = idx(t)
        r = metric(sample, "pushsim_sender_retries_total")
        if i is not None and r is not None:
            retries[i] = max(0.0, r - prev) if prev is not None else 0.0
        if r is not None:
            prev = r
        q = metric(sample, "pushsim_sender_queue_depth")
        if i is not None and q is not None:
            queue[i] = q
    # Stale-token cleanup: tokens answered dead so far vs pruned by the sender so far.
    rejected_t = sorted(float(r.get("first_rejected_at", 0.0)) - t0 for r in gt.dead_tokens)
    pruned_t: list[float] = []
    if gt.sender_dead is not None:
        dead_keys = {
            (str(r.get("provider")), normalize_token(str(r.get("provider")), str(r.get("token"))))
            for r in gt.dead_tokens
        }
        for reg in gt.sender_dead:
            pair = (
                str(reg.get("provider")),
                normalize_token(str(reg.get("provider")), str(reg.get("token"))),
            )
            if pair in dead_keys and isinstance(reg.get("died_at"), (int, float)):
                pruned_t.append(float(reg["died_at"]) - t0)
    pruned_t.sort()
    return {
        "t0": t0,
        "bucket_s": bucket_s,
        "load_end_s": max(0.0, gt.load_ended_at - t0) if gt.load_ended_at else None,
        "sent": sent,
        "errors": errors,
        "delivered": delivered,
        "api_p50_ms": [percentile(b, 50) for b in lat],
        "api_p99_ms": [percentile(b, 99) for b in lat],
        "retries": retries,
        "queue_depth": queue,
        "rejected_at": rejected_t,
        "pruned_at": pruned_t,
    }
