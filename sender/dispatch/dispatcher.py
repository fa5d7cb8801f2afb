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

With other instances on the same database (:class:`sender.dispatch.peers.Peers`) a
provider-wide hold and the breaker's opening and closing are shared with them, and the
provider's rate is theirs too. :meth:`Dispatcher.pause` stops new attempts while the
database is unreachable (outcomes could not be recorded); :meth:`Dispatcher.abandon`
drops every queued delivery when another instance has taken them over.
"""

from __future__ import annotations

import asyncio
import logging
import random

from pushsim.clock import Clock
from sender.config.settings import PROVIDERS, ProviderLimits
from sender.dispatch.job import Job, ProviderClient, Recorder
from sender.dispatch.lane import ProviderLane, release_probe, send_check, through_gate
from sender.dispatch.peers import Peers
from sender.metrics import SenderMetrics
from sender.policy.breaker import CircuitBreaker, State
from sender.policy.classify import Kind, Outcome, transport_failure
from sender.policy.holdoff import DeviceHolds, Held, Hold, HoldScope, hold_for
from sender.policy.ratelimit import TokenBucket
from sender.policy.retry import RetriesExhausted, RetryPolicy
from sender.storage.records import DeliveryRow
from sender.storage.tokens import TokenStore

log = logging.getLogger("pushsim.sender")


class Dispatcher:
    def __init__(
        self,
        clients: dict[str, ProviderClient],
        outbox: Recorder,
        store: TokenStore,
        metrics: SenderMetrics,
        clock: Clock,
        rng: random.Random,
        limits: dict[str, ProviderLimits],
        *,
        retry: RetryPolicy | None = None,
        breaker_threshold: int = 20,
        breaker_open_for: float = 1.0,
        peers: Peers | None = None,
    ) -> None:
        self.clients = clients
        self.outbox = outbox
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.rng = rng
        self.retry = retry or RetryPolicy()
        self.peers = peers
        self.lanes: dict[str, ProviderLane] = {}
        for provider in PROVIDERS:
            lim = limits.get(provider, ProviderLimits())
            shared = peers.pacer(provider, lim) if peers is not None and lim.rate > 0 else None
            self.lanes[provider] = ProviderLane(
                provider,
                lim,
                CircuitBreaker(
                    clock, failure_threshold=breaker_threshold, open_for=breaker_open_for
                ),
                shared or TokenBucket(clock, lim.rate, lim.burst),
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
        self._go = asyncio.Event()  # cleared while paused
        self._go.set()
        self._timers: dict[asyncio.TimerHandle, Job] = {}
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
        self._go.set()
        tasks = [t for lane in self.lanes.values() for t in lane.workers]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in self.clients.values():
            client.close()

    def pause(self) -> None:
        """Start no new attempt until :meth:`resume` (those in flight finish)."""
        if self._go.is_set():
            log.warning("dispatch paused: the database is unreachable")
        self._go.clear()

    def resume(self) -> None:
        if not self._go.is_set():
            log.warning("dispatch resumed")
        self._go.set()

    @property
    def paused(self) -> bool:
        return not self._go.is_set()

    def abandon(self) -> int:
        """Drop every delivery queued or waiting for its retry (another instance owns them
        now); those in flight finish. Returns how many were dropped."""
        dropped = len(self._timers)
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for lane in self.lanes.values():
            while not lane.queue.empty():
                lane.queue.get_nowait()
                dropped += 1
        for _ in range(dropped):
            self._finished()
        return dropped

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
            self._timers.pop(handle, None)
            lane.queue.put_nowait(job)

        handle = loop.call_later(delay, fire)
        self._timers[handle] = job

    def _finished(self) -> None:
        self.open_jobs -= 1
        if self.open_jobs <= 0:
            self.open_jobs = 0
            self._idle.set()

    # -- the send loop --------------------------------------------------------------

    def _breaker_metric(self, lane: ProviderLane, tell: bool = True) -> None:
        b = lane.breaker
        if b.transitions != lane.breaker_seen:
            lane.breaker_seen = b.transitions
            self.metrics.breaker_state.labels(lane.provider).set(int(b.state))
            log.info("%s circuit breaker %s", lane.provider, b.state.name.lower())
            if tell and self.peers is not None and b.state is not State.HALF_OPEN:
                self.peers.breaker(lane.provider, b.state is State.OPEN, b.current_open_for)

    def peer_breaker(self, provider: str, opened: bool, open_for: float) -> None:
        """Another instance's breaker for ``provider`` opened or closed: follow it."""
        lane = self.lanes[provider]
        if opened:
            lane.breaker.force_open(open_for)
        else:
            lane.breaker.force_close()
        self._breaker_metric(lane, tell=False)

    def peer_hold(self, provider: str, not_before: float, quota: bool) -> None:
        """Another instance got a provider-wide Retry-After until ``not_before`` (wall)."""
        lane = self.lanes[provider]
        mono = self.clock.monotonic() + (not_before - self.clock.time())
        lane.gate.hold(Hold(HoldScope.PROVIDER, mono, quota))
        self.metrics.holds.labels(provider).inc()

    async def _worker(self, lane: ProviderLane) -> None:
        while True:
            job = await lane.queue.get()
            if not self._go.is_set():
                await self._go.wait()
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
            release_probe(breaker, probe)
            self.metrics.skipped_dead.labels(row.provider).inc()
            self._give_up(job, "dead_token", "token already dead")
            return
        now = self.clock.time()
        if now >= job.prepared.deadline:
            release_probe(breaker, probe)
            self._give_up(job, "dead_lettered", row.last_error or "deadline passed")
            return
        if lane.bucket.rate > 0:
            await lane.bucket.acquire()
        client = self.clients.get(row.provider)
        if client is None:
            release_probe(breaker, probe)
            self._give_up(job, "failed", f"{row.provider} not configured")
            return
        ticket = await through_gate(lane, self.clock, job.prepared.deadline)
        if ticket is None:
            release_probe(breaker, probe)
            self._give_up(job, "dead_lettered", row.last_error or "deadline passed")
            return
        generation, serial = ticket
        success = False
        holds = self.device_holds
        before_send = send_check(lane, generation, row, self.store.is_dead, holds, self.clock)
        try:
            held = self.device_holds.wait_time(row.provider, row.token, self.clock.monotonic())
            if held > 0:
                release_probe(breaker, probe)
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
                release_probe(breaker, probe)
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
            if self.peers is not None:
                wall = self.clock.time() + (hold.not_before - self.clock.monotonic())
                self.peers.held(row.provider, wall, hold.quota)
            log.info(
                "%s: Retry-After %.1fs (%s): provider paused",
                row.provider,
                outcome.retry_after or 0.0,
                outcome.reason,
            )
        else:
            self.device_holds.hold(row.provider, row.token, hold, answered)

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
