"""Objectives: what a scenario requires of a sender, and judging measures against them (pure).

A scenario names objectives by ``min_<measure>`` or ``max_<measure>``; each maps to one
measure computed from ground truth (see :mod:`loadtests.judge.measures`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ObjectiveKind:
    name: str  # as written in a scenario
    measure: str  # key in the measures dict
    op: str  # ">=" or "<="
    unit: str
    description: str


CATALOG: dict[str, ObjectiveKind] = {
    k.name: k
    for k in (
        ObjectiveKind(
            "min_throughput_per_s",
            "throughput_per_s",
            ">=",
            "/s",
            "notifications accepted by the sender per second of load",
        ),
        ObjectiveKind(
            "min_delivered_ratio",
            "delivered_ratio",
            ">=",
            "",
            "share of deliverable (notification, device) pairs the simulator saw delivered",
        ),
        ObjectiveKind(
            "max_lost",
            "lost",
            "<=",
            "",
            "accepted notifications to a live device that never reached it",
        ),
        ObjectiveKind(
            "max_p99_api_latency_ms",
            "api_latency_p99_ms",
            "<=",
            "ms",
            "99th percentile of POST /v1/notifications response time",
        ),
        ObjectiveKind(
            "max_p99_delivery_latency_ms",
            "delivery_latency_p99_ms",
            "<=",
            "ms",
            "99th percentile from the API call to the device's inbox",
        ),
        ObjectiveKind(
            "max_api_error_ratio",
            "api_error_ratio",
            "<=",
            "",
            "share of notification requests the sender did not accept",
        ),
        ObjectiveKind(
            "max_prune_delay_s",
            "prune_delay_max_s",
            "<=",
            "s",
            "longest time from the provider's first 'dead token' answer "
            "to the sender marking it dead",
        ),
        ObjectiveKind(
            "max_stale_tokens_left",
            "stale_tokens_left",
            "<=",
            "",
            "tokens the provider answered dead that are still active in the sender at the end",
        ),
        ObjectiveKind(
            "max_retry_after_violations",
            "retry_after_violations",
            "<=",
            "",
            "requests to a throttled provider before its Retry-After elapsed",
        ),
        ObjectiveKind(
            "max_unprocessed_not_retried",
            "unprocessed_not_retried",
            "<=",
            "",
            "sends the provider never processed (a refused stream, a stream above a GOAWAY's "
            "last-stream-id): safe to retry, not retried",
        ),
        ObjectiveKind(
            "max_sends_during_outage",
            "sends_during_outage",
            "<=",
            "",
            "requests sent to a provider while it was down (beyond breaker probes)",
        ),
        ObjectiveKind(
            "max_wasted_sends",
            "wasted_sends",
            "<=",
            "",
            "sends to a token after the provider already answered that it is dead",
        ),
        ObjectiveKind(
            "max_duplicate_deliveries",
            "duplicate_deliveries",
            "<=",
            "",
            "notifications delivered more than once to the same device",
        ),
        ObjectiveKind(
            "min_open_funnel_accuracy",
            "open_funnel_accuracy",
            ">=",
            "",
            "how closely the sender's opened receipts match what the simulated users opened "
            "(1 - |sender - simulator| / simulator)",
        ),
        ObjectiveKind(
            "max_retries_per_failure",
            "retries_per_failure",
            "<=",
            "",
            "sender retries per provider failure answer",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Objective:
    name: str
    required: float
    line: int | None = None

    @property
    def kind(self) -> ObjectiveKind:
        return CATALOG[self.name]


@dataclass(frozen=True, slots=True)
class Verdict:
    name: str
    measure: str
    op: str
    required: float
    measured: float | None
    passed: bool
    unit: str
    description: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measure": self.measure,
            "op": self.op,
            "required": self.required,
            "measured": self.measured,
            "passed": self.passed,
            "unit": self.unit,
            "description": self.description,
            "detail": self.detail,
        }


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:.4g}" if abs(value) < 1 else f"{value:.1f}"
    else:
        text = str(int(value))
    return f"{text}{' ' + unit if unit and unit != '/s' else unit}"


def judge_one(objective: Objective, measures: dict[str, Any]) -> Verdict:
    kind = objective.kind
    raw = measures.get(kind.measure)
    measured = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
    req = objective.required
    if measured is None:
        why = measures.get(f"{kind.measure}__why", "the run produced no data for it")
        passed = False
        required = f"required {kind.op} {fmt(req, kind.unit)}"
        detail = f"{kind.measure} could not be measured ({why}); {required}"
    else:
        passed = measured >= req if kind.op == ">=" else measured <= req
        word = "ok" if passed else "FAILED"
        required = f"required {kind.op} {fmt(req, kind.unit)}"
        detail = f"{word}: measured {kind.measure} = {fmt(measured, kind.unit)}, {required}"
    return Verdict(
        objective.name,
        kind.measure,
        kind.op,
        req,
        measured,
        passed,
        kind.unit,
        kind.description,
        detail,
    )


def judge(
    objectives: list[Objective] | tuple[Objective, ...], measures: dict[str, Any]
) -> list[Verdict]:
    return [judge_one(o, measures) for o in objectives]
