"""Dispatch: per-provider workers that send deliveries and act on each outcome.

Each provider has ``concurrency`` workers (its in-flight limit), a token bucket (its
quota), and a circuit breaker. A worker takes a delivery, waits for the breaker and the
bucket, skips tokens already known dead, dead-letters deliveries past their deadline,
sends, records the attempt, and then: marks it delivered; prunes the token; fails it; or
schedules a retry with backoff (never sooner than the provider's Retry-After).

Retry-After is honoured for the scope the provider meant (:mod:`sender.policy.holdoff`): a
provider- or project-wide answer closes the provider's gate (no request of any delivery,
queued or probing, starts before the not-before time, then one at a time until the
provider takes one again); a per-device answer holds only that token.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from pushsim.clock import Clock
from sender.config.settings import PROVIDERS, ProviderLimits
from sender.dispatch.job import Job, ProviderClient
from sender.metrics import SenderMetrics
from sender.policy.breaker import CircuitBreaker, State
from sender.policy.classify import Kind, Outcome, transport_failure
from sender.policy.holdoff import DeviceHolds, Held, HoldScope, ProviderGate, hold_for
from sender.policy.ratelimit import TokenBucket
from sender.policy.retry import RetriesExhausted, RetryPolicy
from sender.storage.outbox import DeliveryRow, Outbox
from sender.storage.tokens import TokenStore

log = logging.getLogger("pushsim.sender")


@dataclass
class ProviderLane:
    provider: str
    limits: ProviderLimits
    breaker: CircuitBreaker
    bucket: TokenBucket
    queue: asyncio.Queue[Job] = field(default_factory=asyncio.Queue)
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    breaker_seen: int = -1
    sends_while_open: int = 0
    gate: ProviderGate = field(default_factory=ProviderGate)
    serial: asyncio.Lock = field(default_factory=asyncio.Lock)
    # This provider's children of the per-delivery metrics (labels() looked up once).
    sent: Any = None
    delivered: Any = None
    latency: Any = None


class Dispatcher:
    def __init__(
        self,
        clients: dict[str, ProviderClient],
        outbox: Outbox,
        store: TokenStore,
        metrics: SenderMetrics,
        clock: Clock,
        rng: random.Random,
        limits: dict[str, ProviderLimits],
        *,
        retry: RetryPolicy | None = None,
        breaker_threshold: int = 20,
        breaker_open_for: float = 1.0,
    ) -> None:
        self.clients = clients
        self.outbox = outbox
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.rng = rng
        self.retry = retry or RetryPolicy()
        self.lanes: dict[str, ProviderLane] = {}
        for provider in PROVIDERS:
            lim = limits.get(provider, ProviderLimits())
            self.lanes[provider] = ProviderLane(
                provider,
                lim,
                CircuitBreaker(
                    clock, failure_threshold=breaker_threshold, open_for=breaker_open_for
                ),
                TokenBucket(clock, lim.rate, lim.burst),
            )
        for provider, lane in self.lanes.items():
            lane.sent = metrics.sent.labels(provider)
            lane.delivered = metrics.delivered.labels(provider)
            lane.latency = metrics.latency.labels(provider)
        self.device_holds = DeviceHolds()
        self.open_jobs = 0
        metrics.queue_depth.set_function(lambda: self.open_jobs)  # read when scraped
        self._idle = asyncio.Event()
        self._idle.set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.running = False

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self.running = True
        for lane in self.lanes.values():
            for _ in range(max(1, lane.limits.concurrency)):
                lane.workers.append(asyncio.ensure_future(self._worker(lane)))

    async def stop(self) -> None:
        self.running = False
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        tasks = [t for lane in self.lanes.values() for t in lane.workers]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in self.clients.values():
            client.close()

    async def drain(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every submitted delivery is finished; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- intake -------------------------------------------------------------------

    def submit(self, job: Job, delay: float = 0.0) -> None:
        self.open_jobs += 1
        self._idle.clear()
        if delay > 0:
            self._later(delay, job)
        else:
            self.lanes[job.row.provider].queue.put_nowait(job)

    def _later(self, delay: float, job: Job) -> None:
        loop = asyncio.get_running_loop()
        lane = self.lanes[job.row.provider]

        def fire() -> None:
            self._timers.discard(handle)
            lane.queue.put_nowait(job)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def _finished(self) -> None:
        self.open_jobs -= 1
        if self.open_jobs <= 0:
            self.open_jobs = 0
            self._idle.set()

    # -- the send loop --------------------------------------------------------------

    def _breaker_metric(self, lane: ProviderLane) -> None:
        b = lane.breaker
        if b.transitions != lane.breaker_seen:
            lane.breaker_seen = b.transitions
            self.metrics.breaker_state.labels(lane.provider).set(int(b.state))
            log.info("%s circuit breaker %s", lane.provider, b.state.name.lower())

    async def _worker(self, lane: ProviderLane) -> None:
        while True:
            job = await lane.queue.get()
            try:
                await self._attempt(lane, job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Never drop an accepted delivery on a bug: retry it like a transport error.
                log.exception("delivery %s: unexpected error", job.row.id)
                self._handle(lane, job, transport_failure(f"internal error: {exc!r}"[:200]))

    async def _attempt(self, lane: ProviderLane, job: Job) -> None:
        row = job.row
        held = self.device_holds.wait_time(row.provider, row.token, self.clock.monotonic())
        if held > 0:
            self._later(held, job)  # this token's Retry-After: not an attempt
            return
        breaker = lane.breaker
        if not breaker.try_acquire() and not await self._wait_for_breaker(lane, job):
            return
        self._breaker_metric(lane)
        probe = breaker.state is State.HALF_OPEN
        if self.store.is_dead(row.provider, row.token):
            self._release_probe(breaker, probe)
            self.metrics.skipped_dead.labels(row.provider).inc()
            self._give_up(job, "dead_token", "token already dead")
            return
        now = self.clock.time()
        if now >= job.prepared.deadline:
            self._release_probe(breaker, probe)
            self._give_up(job, "dead_lettered", row.last_error or "deadline passed")
            return
        if lane.bucket.rate > 0:
            await lane.bucket.acquire()
        client = self.clients.get(row.provider)
        if client is None:
            self._release_probe(breaker, probe)
            self._give_up(job, "failed", f"{row.provider} not configured")
            return
        ticket = await self._through_gate(lane, job)
        if ticket is None:
            self._release_probe(breaker, probe)
            self._give_up(job, "dead_lettered", row.last_error or "deadline passed")
            return
        generation, serial = ticket
        success = False
        gate = lane.gate
        holds = self.device_holds

        def before_send() -> None:
            if gate.generation != generation:
                raise Held(f"{row.provider} paused")
            if holds.until and holds.wait_time(row.provider, row.token, self.clock.monotonic()):
                raise Held("device token paused")

        try:
            held = self.device_holds.wait_time(row.provider, row.token, self.clock.monotonic())
            if held > 0:
                self._release_probe(breaker, probe)
                self._later(held, job)
                return
            if breaker.state is State.OPEN:
                lane.sends_while_open += 1
            started = self.clock.monotonic()
            job.before_send = before_send
            try:
                outcome, status = await client.deliver(job)
            except Held:
                # Never reached the wire: back through the gate, not an attempt.
                self._release_probe(breaker, probe)
                lane.queue.put_nowait(job)
                return
            finally:
                job.before_send = None
            lane.sent.inc()
            answered = self.clock.monotonic()
            elapsed = answered - started
            # Before the gate opens for the next request: nothing may slip past it.
            self._hold(lane, row, status, outcome, answered)
            success = outcome.kind in (Kind.DELIVERED, Kind.TOKEN_DEAD, Kind.PERMANENT)
        finally:
            lane.gate.release(generation, success)
            if serial is not None:
                serial.release()
        lane.latency.observe(elapsed)
        row.attempts += 1
        reason = outcome.reason or ("ok" if outcome.kind is Kind.DELIVERED else outcome.kind.value)
        self.outbox.record_attempt(row.id, self.clock.time(), status, reason, elapsed * 1000)
        self._handle(lane, job, outcome)
        self._breaker_metric(lane)

    async def _wait_for_breaker(self, lane: ProviderLane, job: Job) -> bool:
        """Wait until the breaker lets a request through; False (given up) if the
        delivery's deadline passes first."""
        breaker = lane.breaker
        while True:
            self._breaker_metric(lane)
            if self.clock.time() >= job.prepared.deadline:
                self._give_up(job, "dead_lettered", job.row.last_error or "deadline passed")
                return False
            await asyncio.sleep(min(1.0, max(0.005, breaker.wait_time())))
            if breaker.try_acquire():
                return True

    def _hold(
        self,
        lane: ProviderLane,
        row: DeliveryRow,
        status: int | None,
        outcome: Outcome,
        answered: float,
    ) -> None:
        """Honour a Retry-After for the scope the provider meant: all of it, or one token."""
        hold = hold_for(row.provider, status, outcome, answered)
        if hold is None:
            return
        if hold.scope is HoldScope.PROVIDER:
            lane.gate.hold(hold)
            self.metrics.holds.labels(row.provider).inc()
            log.info(
                "%s: Retry-After %.1fs (%s): provider paused",
                row.provider,
                outcome.retry_after or 0.0,
                outcome.reason,
            )
        else:
            self.device_holds.hold(row.provider, row.token, hold, answered)

    async def _through_gate(
        self, lane: ProviderLane, job: Job
    ) -> tuple[int, asyncio.Lock | None] | None:
        """Wait for the provider's gate; (generation, serial lock held or None), or None when
        the delivery's deadline would pass first."""
        gate = lane.gate
        for _ in range(100_000):
            now = self.clock.monotonic()
            wait = gate.wait_time(now)
            if wait > 0:
                if self.clock.time() + wait >= job.prepared.deadline:
                    return None
                await asyncio.sleep(min(wait, 1.0))
                continue
            if not gate.careful(now):
                return gate.admit(), None
            await lane.serial.acquire()
            try:
                # Requests that left before the hold must come back first (bounded: 10 s).
                for _spin in range(2000):
                    if gate.in_flight <= 0:
                        break
                    await asyncio.sleep(0.005)
            except BaseException:
                lane.serial.release()
                raise
            now = self.clock.monotonic()
            if gate.wait_time(now) > 0:
                lane.serial.release()
                continue
            if not gate.careful(now):
                lane.serial.release()
                return gate.admit(), None
            return gate.admit(), lane.serial
        return None

    @staticmethod
    def _release_probe(breaker: CircuitBreaker, probe: bool) -> None:
        if probe:
            breaker.probes_in_flight = max(0, breaker.probes_in_flight - 1)

    def _handle(self, lane: ProviderLane, job: Job, outcome: Outcome) -> None:
        row = job.row
        kind = outcome.kind
        p = row.provider
        if kind is Kind.DELIVERED:
            lane.breaker.on_success()
            lane.delivered.inc()
            self.store.mark_success(p, row.token)
            row.status = "delivered"
            self.outbox.update(row.id, "delivered", row.attempts, 0.0, None, outcome.message_id)
            self._finished()
            return
        self.metrics.failed.labels(p, outcome.reason or kind.value).inc()
        if kind is Kind.TOKEN_DEAD:
            lane.breaker.on_neutral()
            if self.store.mark_dead(p, row.token, outcome.reason):
                self.metrics.pruned.labels(p, outcome.reason).inc()
            self._give_up(job, "dead_token", outcome.reason)
            return
        if kind is Kind.PERMANENT:
            lane.breaker.on_neutral()
            self._give_up(job, "failed", outcome.reason)
            return
        if outcome.counts_against_breaker:
            lane.breaker.on_failure()
        else:
            lane.breaker.on_neutral()
        row.last_error = outcome.reason or kind.value
        try:
            job.policy = job.policy.increment(self.rng, outcome.retry_after)
        except RetriesExhausted:
            self._give_up(job, "dead_lettered", row.last_error)
            return
        delay = job.policy.last_delay
        if kind is Kind.REAUTH and job.policy.attempts <= 3:
            # Fresh credentials (or a fresh connection) are already in place: go again now.
            delay = outcome.retry_after or 0.0
        now = self.clock.time()
        if now + delay >= job.prepared.deadline:
            self._give_up(job, "dead_lettered", row.last_error)
            return
        self.metrics.retries.labels(p).inc()
        row.status = "retrying"
        row.next_at = now + delay
        self.outbox.update(row.id, "retrying", row.attempts, row.next_at, row.last_error)
        self._later(delay, job)

    def _give_up(self, job: Job, status: str, reason: str) -> None:
        row = job.row
        row.status = status
        row.last_error = reason
        if status == "dead_lettered":
            self.metrics.dead_lettered.labels(row.provider).inc()
        self.outbox.update(row.id, status, row.attempts, 0.0, reason)
        self._finished()
