"""The record of every injection: counters, per-second buckets, window events, Retry-After truth.

Times are run seconds (since the simulator started) beside wall-clock epoch seconds, so a
report can set the injections beside what a sender logged.

Retry-After ground truth: when the simulator answers 429/503 with Retry-After to a scope
(a device token, a project or a whole provider) it notes the not-before time; a request
to that scope arriving earlier is a ``retry_after_violation``, except a request arriving
within ``IN_FLIGHT_GRACE`` seconds of the answer that began the hold: it was, in all
likelihood, on the wire before the sender could read the answer (a sender with requests in
flight cannot recall them, and a request written just before the answer is read crosses it
on the wire). Those count in ``retry_after_in_flight`` instead. A sender that ignores
Retry-After keeps sending through the whole hold and is counted. A request arriving while
an outage covers it counts in ``sends_during_outage``.

Requests a provider never processed (a refused stream, a stream above a GOAWAY's
last-stream-id) are in the timeline's ``unprocessed``, each with whether and when the
sender sent it again (:mod:`simulator.faults.unprocessed`); ``unprocessed_not_retried``
counts those it never did: safe to retry, not retried.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from simulator.faults.spec import (
    PROVIDERS,
    Auth,
    Errors,
    FaultSpec,
    HostileClient,
    Latency,
    Outage,
    Throttle,
    TokenChurn,
)
from simulator.faults.unprocessed import UnprocessedLedger

MAX_WINDOW_EVENTS = 10_000
MAX_CHURN_EVENTS = 100_000
IN_FLIGHT_GRACE = 0.1  # seconds: a loop turn of a busy sender and of the simulator


def fault_variant(spec: FaultSpec) -> str:
    """What sets a fault apart from another of its kind and provider, for timelines and
    reports: the churn action, the outage or auth mode, the throttle scope and rate, the
    latency distribution, the error share (``token_churn any (reinstall)``)."""
    p = spec.params
    if isinstance(p, TokenChurn):
        return p.action
    if isinstance(p, Outage | Auth):
        return p.mode
    if isinstance(p, Throttle):
        return f"{p.scope} {p.rate:g}/s"
    if isinstance(p, Latency):
        return p.distribution
    if isinstance(p, Errors):
        return f"{p.probability * 100:g}%"
    if isinstance(p, HostileClient):
        return f"{p.behaviour} x{p.connections}"
    return ""


class RetryAfterLedger:
    """Not-before times per (provider, scope kind, key), and the requests that came early."""

    def __init__(self) -> None:
        self.not_before: dict[tuple[str, str, str], float] = {}
        self.violations: Counter[str] = Counter()
        self.honoured: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.has_device_scopes = 0
        # When (and on which connection) each hold began.
        self._issued: dict[tuple[str, str, str], tuple[float, int | None]] = {}

    def note(
        self,
        provider: str,
        scope: str,
        key: str,
        not_before: float,
        now: float | None = None,
        conn_id: int | None = None,
    ) -> None:
        k = (provider, scope, key)
        if now is not None and k not in self.not_before:
            self._issued[k] = (now, conn_id)
        if self.not_before.get(k, -math.inf) < not_before:
            if k not in self.not_before and scope == "device":
                self.has_device_scopes += 1
            self.not_before[k] = not_before

    def check(
        self,
        provider: str,
        token: str | None,
        project: str | None,
        now: float,
        conn_id: int | None = None,
    ) -> bool:
        """Whether this request came before a Retry-After it was given ran out."""
        if not self.not_before:
            return False
        early = False
        for scope, key in (("provider", provider), ("device", token), ("project", project)):
            if key is None:
                continue
            k = (provider, scope, key)
            nb = self.not_before.get(k)
            if nb is None:
                continue
            if now < nb:
                if self._in_flight(k, now):
                    self.in_flight[provider] += 1
                else:
                    early = True
            else:
                del self.not_before[k]
                self._issued.pop(k, None)
                if scope == "device":
                    self.has_device_scopes -= 1
                self.honoured[provider] += 1
        if early:
            self.violations[provider] += 1
        return early

    def _in_flight(self, k: tuple[str, str, str], now: float) -> bool:
        issued = self._issued.get(k)
        return issued is not None and now - issued[0] <= IN_FLIGHT_GRACE


class FaultRecord:
    def __init__(self, started_wall: float) -> None:
        self.started_wall = started_wall
        self.injected: Counter[tuple[str, str, str, str]] = (
            Counter()
        )  # provider, fault id, kind, outcome
        self.buckets: Counter[tuple[int, str, str, str]] = (
            Counter()
        )  # second, provider, fault id, outcome
        self.events: list[dict[str, Any]] = []  # windows opened / closed, in order
        self.fault_windows: dict[str, dict[str, Any]] = {}  # fault id -> start, end
        self.churn: list[dict[str, Any]] = []
        self.sends_during_outage: Counter[str] = Counter()
        self.ledger = RetryAfterLedger()
        self.unprocessed = UnprocessedLedger()

    def count(
        self, now: float, provider: str, fault_id: str, kind: str, outcome: str, n: int = 1
    ) -> None:
        self.injected[(provider, fault_id, kind, outcome)] += n
        self.buckets[(int(now), provider, fault_id, outcome)] += n

    def window(
        self,
        at: float,
        fault_id: str,
        kind: str,
        provider: str,
        event: str,
        detail: str = "",
        planned_end: float | None = None,
        variant: str = "",
    ) -> None:
        """A window opened or closed (``at`` in run seconds); ``variant``: see
        :func:`fault_variant`."""
        w = self.fault_windows.get(fault_id)
        if event == "opened" and w is None:
            w = self.fault_windows[fault_id] = {
                "fault": fault_id,
                "kind": kind,
                "provider": provider,
                "start": round(at, 6),
                "end": None,
                "planned_end": None if planned_end is None else round(planned_end, 6),
            }
            if variant:
                w["variant"] = variant
        elif event == "closed" and w is not None and w["end"] is None:
            w["end"] = round(at, 6)
        if len(self.events) >= MAX_WINDOW_EVENTS:
            return
        entry: dict[str, Any] = {
            "at": round(at, 6),
            "wall": round(self.started_wall + at, 6),
            "fault": fault_id,
            "kind": kind,
            "provider": provider,
            "event": event,
        }
        if variant:
            entry["variant"] = variant
        if detail:
            entry["detail"] = detail
        self.events.append(entry)

    def shift(self, delta: float) -> None:
        """The run clock restarted ``delta`` seconds later: re-express the record in it."""
        self.started_wall += delta
        for e in self.events:
            e["at"] = round(e["at"] - delta, 6)
        for c in self.churn:
            c["at"] = round(c["at"] - delta, 6)
        for w in self.fault_windows.values():
            for key in ("start", "end", "planned_end"):
                if w[key] is not None:
                    w[key] = round(w[key] - delta, 6)
        self.buckets = Counter(
            {(math.floor(s - delta), p, f, o): n for (s, p, f, o), n in self.buckets.items()}
        )
        self.unprocessed.shift(delta)

    def churned(
        self,
        at: float,
        fault_id: str,
        provider: str,
        device_id: str,
        action: str,
        old: str,
        new: str | None,
    ) -> None:
        self.count(
            at,
            provider,
            fault_id,
            "token_churn",
            "reinstalled" if action == "reinstall" else "uninstalled",
        )
        if len(self.churn) < MAX_CHURN_EVENTS:
            self.churn.append(
                {
                    "at": round(at, 6),
                    "fault": fault_id,
                    "provider": provider,
                    "device_id": device_id,
                    "action": action,
                    "old_token": old,
                    "new_token": new,
                }
            )

    # -- reading ------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        injected: dict[str, dict[str, dict[str, int]]] = {}
        for (provider, _fid, kind, outcome), n in sorted(self.injected.items()):
            per_kind = injected.setdefault(provider, {}).setdefault(kind, {})
            per_kind[outcome] = per_kind.get(outcome, 0) + n
        return {
            "faults_injected": injected,
            "retry_after_violations": {p: self.ledger.violations.get(p, 0) for p in PROVIDERS},
            "retry_after_honoured": {p: self.ledger.honoured.get(p, 0) for p in PROVIDERS},
            "retry_after_in_flight": {p: self.ledger.in_flight.get(p, 0) for p in PROVIDERS},
            "sends_during_outage": {p: self.sends_during_outage.get(p, 0) for p in PROVIDERS},
            **self._unprocessed_stats(),
        }

    def _unprocessed_stats(self) -> dict[str, dict[str, int]]:
        u = self.unprocessed
        waiting = u.not_retried()
        return {
            "unprocessed_streams": {p: u.lost_count.get(p, 0) for p in PROVIDERS},
            "unprocessed_retried": {p: u.retried.get(p, 0) for p in PROVIDERS},
            "unprocessed_not_retried": {p: waiting.get(p, 0) for p in PROVIDERS},
        }

    def timeline(self, now: float) -> dict[str, Any]:
        return {
            "started_at": self.started_wall,
            "now": round(now, 6),
            "windows": [self._window_view(w, now) for w in self.fault_windows.values()],
            "events": self.events,
            "totals": [
                {"provider": p, "fault": f, "kind": k, "outcome": o, "count": n}
                for (p, f, k, o), n in sorted(self.injected.items())
            ],
            "buckets": [
                {"second": s, "provider": p, "fault": f, "outcome": o, "count": n}
                for (s, p, f, o), n in sorted(self.buckets.items())
            ],
            "churn": self.churn,
            "unprocessed": self.unprocessed.events,
            **{k: v for k, v in self.stats().items() if k != "faults_injected"},
        }

    def _window_view(self, w: dict[str, Any], now: float) -> dict[str, Any]:
        out = dict(w)
        out["open"] = w["end"] is None
        if w["end"] is None:
            planned = w["planned_end"]
            out["end"] = planned if planned is not None and planned > now else round(now, 6)
        out["start_wall"] = round(self.started_wall + w["start"], 6)
        out["end_wall"] = round(self.started_wall + out["end"], 6)
        out["count"] = sum(n for (_p, f, _k, _o), n in self.injected.items() if f == w["fault"])
        return out

    def prometheus(self) -> str:
        lines = [
            "# HELP pushsim_faults_injected_total Faults injected by provider, kind, outcome.",
            "# TYPE pushsim_faults_injected_total counter",
        ]
        per: Counter[tuple[str, str, str]] = Counter()
        for (p, _f, k, o), n in self.injected.items():
            per[(p, k, o)] += n
        for (p, k, o), n in sorted(per.items()):
            lines.append(
                f'pushsim_faults_injected_total{{provider="{p}",fault="{k}",outcome="{o}"}} {n}'
            )
        lines += [
            "# HELP pushsim_retry_after_violations_total Requests sent before their Retry-After.",
            "# TYPE pushsim_retry_after_violations_total counter",
        ]
        lines += [
            f'pushsim_retry_after_violations_total{{provider="{p}"}} {n}'
            for p, n in ((p, self.ledger.violations.get(p, 0)) for p in PROVIDERS)
        ]
        lines += [
            "# HELP pushsim_sends_during_outage_total Requests that arrived during an outage.",
            "# TYPE pushsim_sends_during_outage_total counter",
        ]
        lines += [
            f'pushsim_sends_during_outage_total{{provider="{p}"}} {n}'
            for p, n in ((p, self.sends_during_outage.get(p, 0)) for p in PROVIDERS)
        ]
        return "\n".join(lines) + "\n"
