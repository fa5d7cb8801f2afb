"""Prometheus metrics, one registry per sender instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sender.config.settings import PROVIDERS

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SenderMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = "pushsim_sender_"
        self.accepted = Counter(p + "accepted", "Notifications accepted by the API", registry=r)
        self.sent = Counter(p + "sent", "Requests sent to a provider", ["provider"], registry=r)
        self.delivered = Counter(
            p + "delivered", "Deliveries the provider accepted", ["provider"], registry=r
        )
        self.retries = Counter(p + "retries", "Attempts scheduled again", ["provider"], registry=r)
        self.failed = Counter(
            p + "failed", "Failed attempts by reason", ["provider", "reason"], registry=r
        )
        self.pruned = Counter(
            p + "tokens_pruned", "Tokens removed as dead", ["provider", "reason"], registry=r
        )
        self.dead_lettered = Counter(
            p + "dead_lettered", "Deliveries given up on", ["provider"], registry=r
        )
        self.skipped_dead = Counter(
            p + "skipped_dead_token",
            "Deliveries not sent: token already dead",
            ["provider"],
            registry=r,
        )
        self.holds = Counter(
            p + "provider_holds",
            "Provider-wide Retry-After answers that paused every request to the provider",
            ["provider"],
            registry=r,
        )
        self.queue_depth = Gauge(p + "queue_depth", "Deliveries not yet finished", registry=r)
        self.breaker_state = Gauge(
            p + "breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            ["provider"],
            registry=r,
        )
        self.latency = Histogram(
            p + "send_latency_seconds",
            "Provider request latency",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.receipts = Counter(p + "receipts", "Receipts recorded", ["event"], registry=r)
        for prov in PROVIDERS:
            self.breaker_state.labels(prov).set(0)
            for c in (self.sent, self.delivered, self.retries, self.dead_lettered):
                c.labels(prov)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
