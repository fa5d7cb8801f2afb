"""Measures from ground truth (pure).

Inputs: the simulator's record, the sender's metrics and what Locust sent.

The judge is the simulator, not the sender: a notification counts as delivered only when
the simulated device received it (matched by the ``correlation_id`` the harness planted).

Deliverability, per (notification, device) pair that the notification was addressed to:

- delivered: the simulator logged a delivery with that correlation id to that device;
- not deliverable: the device was uninstalled before the send, or its token changed
  (reinstall or uninstall) after ``send time - grace`` and nothing arrived -- a sender
  cannot deliver to a token the device gave up before the sender could learn the new one;
- lost: everything else -- the sender accepted it, the device was there, nothing arrived.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtests.judge.funnel import funnel

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text to ``{"name": total, 'name{k="v"}': value}`` (totals summed over labels)."""
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if math.isnan(value):
            continue
        name, labels = m.group(1), m.group(2)
        out[name] += value
        if labels:
            pairs = ",".join(f'{k}="{v}"' for k, v in sorted(_LABEL.findall(labels)))
            out[f"{name}{{{pairs}}}"] += value
    return dict(out)


def metric(metrics: dict[str, float] | None, name: str, **labels: str) -> float | None:
    if metrics is None:
        return None
    if not labels:
        return metrics.get(name)
    want = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    found = False
    for key, value in metrics.items():
        if key.startswith(name + "{") and all(w in key for w in want):
            total += value
            found = True
    return total if found else None


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def normalize_token(provider: str, token: str) -> str:
    """The simulator's token for a sender's stored token (Web Push stores the endpoint URL)."""
    if provider == "webpush" and "/wp/" in token:
        return token.rsplit("/wp/", 1)[1]
    if provider == "apns":
        return token.lower()
    return token


def find_count(stats: Any, key: str) -> int | None:
    """A counter named ``key`` anywhere in ``/_sim/stats`` (summed if given per provider)."""
    if isinstance(stats, dict):
        if key in stats:
            return _total(stats[key])
        found = [c for v in stats.values() if (c := find_count(v, key)) is not None]
        return sum(found) if found else None
    return None


def _total(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dict):
        parts = [t for v in value.values() if (t := _total(v)) is not None]
        return sum(parts) if parts else 0
    if isinstance(value, list):
        return len(value)
    return None


@dataclass
class GroundTruth:
    """Everything read back after a run (plain JSON-like data, so measures stay pure)."""

    sent: list[dict[str, Any]]  # Locust's log: c, t, ms, st, ok, kind, dev
    deliveries: list[dict[str, Any]]  # /_sim/deliveries
    feed: list[dict[str, Any]]  # /_sim/feed
    dead_tokens: list[dict[str, Any]]  # /_sim/dead_tokens
    sim_stats: dict[str, Any]
    sender_dead: list[dict[str, Any]] | None  # GET /v1/devices?status=dead (None: not available)
    sender_active: list[dict[str, Any]] | None
    metrics_start: dict[str, float] | None
    metrics_end: dict[str, float] | None
    metric_samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    load_started_at: float = 0.0
    load_ended_at: float = 0.0
    ended_at: float = 0.0
    grace_s: float = 3.0


def _delta(gt: GroundTruth, name: str) -> float | None:
    if gt.metrics_end is None:
        return None
    end = metric(gt.metrics_end, name)
    if end is None:
        return 0.0  # exposed without samples: nothing counted yet
    start = metric(gt.metrics_start, name) or 0.0
    return max(0.0, end - start)


def _device_timelines(
    feed: Iterable[dict[str, Any]],
) -> tuple[dict[str, list[float]], dict[str, float]]:
    events: dict[str, list[float]] = defaultdict(list)
    uninstalled: dict[str, float] = {}
    for e in feed:
        dev = str(e.get("device_id"))
        at = float(e.get("at", 0.0))
        events[dev].append(at)
        if e.get("event") == "uninstalled":
            uninstalled[dev] = min(at, uninstalled.get(dev, at))
        elif e.get("event") == "rotated":
            uninstalled.pop(dev, None)
    return events, uninstalled


# measure -> the sender's counter it is the run's delta of
SENDER_COUNTERS = {
    "sender_sent": "pushsim_sender_sent_total",
    "sender_delivered": "pushsim_sender_delivered_total",
    "sender_failed": "pushsim_sender_failed_total",
    "sender_dead_lettered": "pushsim_sender_dead_lettered_total",
    "sender_retries": "pushsim_sender_retries_total",
    "sender_tokens_pruned": "pushsim_sender_tokens_pruned_total",
}
# provider outcomes (in /_sim/stats) that are not a failure
SUCCESS_OUTCOMES = frozenset(
    ("delivered", "ok", "success", "accepted", "stored", "queued", "validated")
)
# counters the simulator reports only with its fault plan
FAULT_COUNTERS = ("retry_after_violations", "unprocessed_not_retried", "sends_during_outage")


def compute(gt: GroundTruth) -> dict[str, Any]:
    accepted = [s for s in gt.sent if s.get("ok")]
    m, span = _api(gt, accepted)
    m.update(_deliverability(gt, accepted, span))

    # The sender's own account (its metrics), as deltas over the run.
    for name, counter in SENDER_COUNTERS.items():
        m[name] = _delta(gt, counter)
    m.update(_provider_answers(gt, m["sender_retries"]))

    # Dead tokens: wasted sends, prune delay, stale tokens left.
    m["dead_token_sends"] = sum(int(r.get("count", 0)) for r in gt.dead_tokens)
    # Sends already in flight when the first answer came (within the simulator's in-flight
    # grace of it, as for Retry-After) are not wasted: no instance could have known yet.
    m["dead_token_sends_in_flight"] = sum(int(r.get("in_flight", 0)) for r in gt.dead_tokens)
    m["wasted_sends"] = sum(
        max(0, int(r.get("count", 0)) - 1 - int(r.get("in_flight", 0))) for r in gt.dead_tokens
    )
    m["dead_tokens_answered"] = len(gt.dead_tokens)
    m.update(_pruning(gt))

    for counter in FAULT_COUNTERS:
        v = find_count(gt.sim_stats, counter)
        m[counter] = v
        if v is None:
            m[f"{counter}__why"] = (
                "the simulator's /_sim/stats does not report it (no fault plan support)"
            )
    m["faults_injected"] = find_count(gt.sim_stats, "faults_injected")
    m.update(funnel(gt.sim_stats, gt.metrics_start, gt.metrics_end))  # delivered -> opened
    return m


def _api(gt: GroundTruth, accepted: list[dict[str, Any]]) -> tuple[dict[str, Any], float]:
    """What the sender's API answered: counts, errors, latency, throughput; and the load's
    span in seconds (at least 1)."""
    m: dict[str, Any] = {}
    m["requests"] = len(gt.sent)
    m["accepted"] = len(accepted)
    m["api_errors"] = len(gt.sent) - len(accepted)
    m["api_error_ratio"] = (m["api_errors"] / len(gt.sent)) if gt.sent else None
    if not gt.sent:
        m["api_error_ratio__why"] = "no notification requests were made"
    api_ms = [float(s.get("ms", 0.0)) for s in gt.sent]
    for q in (50, 95, 99):
        m[f"api_latency_p{q}_ms"] = percentile(api_ms, q)
    times = [float(s["t"]) for s in gt.sent]
    span = (max(times) - min(times)) if len(times) > 1 else 0.0
    span = max(span, 1.0)
    m["load_seconds"] = round(span, 3)
    m["throughput_per_s"] = round(len(accepted) / span, 2) if accepted else 0.0
    return m, span


def _first_deliveries(
    gt: GroundTruth, by_corr: dict[str, dict[str, Any]]
) -> tuple[dict[tuple[str, str], float], dict[str, Any]]:
    """(correlation id, device id) -> when it first arrived, for this run's notifications;
    and the delivery counts."""
    delivered_at: dict[tuple[str, str], float] = {}
    seen: Counter[tuple[str, str]] = Counter()
    ours = 0
    for d in gt.deliveries:
        corr = d.get("correlation_id")
        if corr is None or corr not in by_corr:
            continue
        ours += 1
        key = (str(corr), str(d.get("device_id")))
        seen[key] += 1
        at = float(d.get("at", 0.0))
        delivered_at[key] = min(at, delivered_at.get(key, at))
    counts = {
        "deliveries": ours,
        "duplicate_deliveries": sum(n - 1 for n in seen.values() if n > 1),
    }
    return delivered_at, counts


def _deliverability(gt: GroundTruth, accepted: list[dict[str, Any]], span: float) -> dict[str, Any]:
    """Ground truth: which addressed devices got each notification (see the module's doc)."""
    by_corr: dict[str, dict[str, Any]] = {str(s["c"]): s for s in accepted if s.get("c")}
    delivered_at, m = _first_deliveries(gt, by_corr)
    events, uninstalled = _device_timelines(gt.feed)
    tally: Counter[str] = Counter()  # delivered, lost, excused, topic_delivered, topic_deliverable
    lost_examples: list[dict[str, Any]] = []
    lost_corr: set[str] = set()
    delivery_ms: list[float] = []
    for corr, s in by_corr.items():
        t = float(s["t"])
        is_topic = int(s.get("kind") == "topic")
        for dev in s.get("dev") or []:
            key = (corr, str(dev))
            if key in delivered_at:
                tally.update(delivered=1, topic_delivered=is_topic, topic_deliverable=is_topic)
                delivery_ms.append(max(0.0, (delivered_at[key] - t) * 1000))
            elif _excused(str(dev), t, events, uninstalled, gt.grace_s):
                tally["excused"] += 1
            else:
                tally.update(lost=1, topic_deliverable=is_topic)
                lost_corr.add(corr)
                if len(lost_examples) < 20:
                    lost_examples.append(
                        {"correlation_id": corr, "device_id": dev, "sent_at": t, "id": s.get("nid")}
                    )
    delivered, lost = tally["delivered"], tally["lost"]
    deliverable = delivered + lost
    m["deliverable"] = deliverable
    m["delivered"] = delivered
    m["not_deliverable"] = tally["excused"]
    m["lost"] = lost
    m["lost_notifications"] = len(lost_corr)
    m["lost_examples"] = lost_examples
    m["delivered_ratio"] = round(delivered / deliverable, 6) if deliverable else None
    if not deliverable:
        m["delivered_ratio__why"] = "no accepted notification was addressed to a live device"
    m["topic_sends"] = sum(1 for s in accepted if s.get("kind") == "topic")
    # Topic sends are judged per subscribed device (when the sender could subscribe them).
    m["topic_deliverable"] = tally["topic_deliverable"]
    m["topic_delivered"] = tally["topic_delivered"]
    for q in (50, 95, 99):
        v = percentile(delivery_ms, q)
        m[f"delivery_latency_p{q}_ms"] = round(v, 2) if v is not None else None
    m["delivered_per_s"] = round(delivered / span, 2) if delivered else 0.0
    return m


def _excused(
    dev: str,
    sent_at: float,
    events: dict[str, list[float]],
    uninstalled: dict[str, float],
    grace_s: float,
) -> bool:
    """Not deliverable: uninstalled before the send, or its token changed since ``sent_at -
    grace_s``."""
    gone = uninstalled.get(dev)
    if gone is not None and gone <= sent_at:
        return True
    return any(at >= sent_at - grace_s for at in events.get(dev, ()))


def _provider_answers(gt: GroundTruth, retries: float | None) -> dict[str, Any]:
    """Provider answers other than success, from the simulator's counters."""
    m: dict[str, Any] = {}
    providers = gt.sim_stats.get("providers", {}) if isinstance(gt.sim_stats, dict) else {}
    answers = failures = 0
    for outcomes in providers.values():
        if not isinstance(outcomes, dict):
            continue
        for k, v in outcomes.items():
            if k == "total" or not isinstance(v, int):
                continue
            answers += v
            if k not in SUCCESS_OUTCOMES:
                failures += v
    m["provider_outcomes"] = providers
    m["provider_requests"] = answers
    m["provider_failures"] = failures
    if retries is None:
        m["retries_per_failure"] = None
        m["retries_per_failure__why"] = "the sender exposes no pushsim_sender_retries_total"
    else:
        m["retries_per_failure"] = round(retries / failures, 3) if failures else 0.0
    return m


def _pruning(gt: GroundTruth) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if gt.sender_active is None or gt.sender_dead is None:
        why = "the sender does not list its registrations (GET /v1/devices?status=...)"
        for k in ("prune_delay_max_s", "prune_delay_p50_s", "stale_tokens_left"):
            out[k] = None
            out[f"{k}__why"] = why
        return out
    active = {
        (str(r.get("provider")), normalize_token(str(r.get("provider")), str(r.get("token"))))
        for r in gt.sender_active
    }
    died: dict[tuple[str, str], float] = {}
    for r in gt.sender_dead:
        key = (str(r.get("provider")), normalize_token(str(r.get("provider")), str(r.get("token"))))
        if isinstance(r.get("died_at"), (int, float)):
            died[key] = float(r["died_at"])
    delays: list[float] = []
    stale: list[dict[str, Any]] = []
    for rec in gt.dead_tokens:
        key = (
            str(rec.get("provider")),
            normalize_token(str(rec.get("provider")), str(rec.get("token"))),
        )
        first = float(rec.get("first_rejected_at", 0.0))
        if key in active:
            stale.append(rec)
            delays.append(max(0.0, gt.ended_at - first))
        elif key in died:
            delays.append(max(0.0, died[key] - first))
    out["stale_tokens_left"] = len(stale)
    out["stale_examples"] = [
        {
            "provider": r.get("provider"),
            "token": str(r.get("token"))[:24],
            "first_rejected_at": r.get("first_rejected_at"),
        }
        for r in stale[:10]
    ]
    out["tokens_pruned_seen"] = len(delays) - len(stale)
    out["prune_delay_max_s"] = round(max(delays), 3) if delays else 0.0
    p50 = percentile(delays, 50)
    out["prune_delay_p50_s"] = round(p50, 3) if p50 is not None else None
    return out
