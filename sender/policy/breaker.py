"""A circuit breaker as a pure state machine with an injected clock.

CLOSED: requests flow; ``failure_threshold`` consecutive provider failures (or a failure
rate over ``window`` results) open it. OPEN: nothing is sent until ``open_for`` seconds
pass, then HALF_OPEN: at most ``probes`` requests in flight; a success closes it, a
failure re-opens it with the open time doubled (up to ``max_open_for``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pushsim.clock import Clock


class State(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class CircuitBreaker:
    clock: Clock
    failure_threshold: int = 20
    open_for: float = 1.0
    max_open_for: float = 15.0
    probes: int = 1
    state: State = State.CLOSED
    consecutive_failures: int = 0
    opened_at: float = 0.0
    current_open_for: float = field(default=0.0)
    probes_in_flight: int = 0
    transitions: int = 0

    def __post_init__(self) -> None:
        self.current_open_for = self.open_for

    def _to(self, state: State) -> None:
        if state is not self.state:
            self.transitions += 1
        self.state = state

    def poll(self) -> State:
        """Advance OPEN -> HALF_OPEN when the open time has passed."""
        if (
            self.state is State.OPEN
            and self.clock.monotonic() - self.opened_at >= self.current_open_for
        ):
            self._to(State.HALF_OPEN)
            self.probes_in_flight = 0
        return self.state

    def wait_time(self) -> float:
        """Seconds until a request could be allowed (0 if it could now)."""
        st = self.poll()
        if st is State.CLOSED:
            return 0.0
        if st is State.OPEN:
            return max(0.0, self.opened_at + self.current_open_for - self.clock.monotonic())
        return 0.0 if self.probes_in_flight < self.probes else 0.05

    def try_acquire(self) -> bool:
        """May a request go now? In HALF_OPEN this takes a probe slot."""
        st = self.poll()
        if st is State.CLOSED:
            return True
        if st is State.HALF_OPEN and self.probes_in_flight < self.probes:
            self.probes_in_flight += 1
            return True
        return False

    def on_success(self) -> None:
        if self.state is State.HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            self.current_open_for = self.open_for
            self._to(State.CLOSED)
        self.consecutive_failures = 0

    def on_neutral(self) -> None:
        """An answer that says nothing about provider health (e.g. a dead token)."""
        if self.state is State.HALF_OPEN:
            self.on_success()
        else:
            self.consecutive_failures = 0

    def on_failure(self) -> None:
        now = self.clock.monotonic()
        if self.state is State.HALF_OPEN:
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            self.current_open_for = min(self.max_open_for, self.current_open_for * 2)
            self.opened_at = now
            self._to(State.OPEN)
            return
        if self.state is State.OPEN:
            return  # a straggler from before it opened
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.failure_threshold:
            self.opened_at = now
            self._to(State.OPEN)

    def force_open(self, open_for: float) -> None:
        """Another instance's breaker for this provider opened: open for ``open_for``
        seconds from now (an open breaker closing later than that stays as it is)."""
        now = self.clock.monotonic()
        if self.state is State.OPEN and self.opened_at + self.current_open_for >= now + open_for:
            return
        self.opened_at = now
        self.current_open_for = max(self.open_for, min(self.max_open_for, open_for))
        self.probes_in_flight = 0
        self._to(State.OPEN)

    def force_close(self) -> None:
        """Another instance's probe succeeded: the provider is taking requests again."""
        if self.state is State.CLOSED:
            return
        self.current_open_for = self.open_for
        self.consecutive_failures = 0
        self.probes_in_flight = 0
        self._to(State.CLOSED)
