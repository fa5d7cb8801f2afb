"""How many client connections the provider listeners take, so that no peer can use up the
process's file descriptors (and with them every listener and the control API).

Two bounds, checked when a connection is made: the listener's own cap
(:attr:`~simulator.server.listener.ListenerOptions.max_connections`), so one listener's
peers cannot crowd out another's; and, for all provider listeners together, the process's
descriptor limit less a reserve (:func:`reserve`) kept for the control API, the dashboard,
log and state files. A connection over either bound is closed at once (a FIN: the client
sees the connection end and may retry), and the refusals are counted.

:func:`raise_descriptor_limit` lifts the soft ``RLIMIT_NOFILE`` towards the hard one when
the first listener starts, as the Go runtime does for every program, so a 1,024 default
does not cap a load test that a machine could serve.
"""

from __future__ import annotations

import logging

try:
    import resource
except ImportError:  # pragma: no cover - Windows: no descriptor limit to read
    resource = None  # type: ignore[assignment]

log = logging.getLogger("pushsim.server")

RESERVE_MIN = 64  # descriptors kept out of the provider listeners' reach, at least
WANTED_DESCRIPTORS = 65536  # what raise_descriptor_limit asks for (at most the hard limit)


def descriptor_limit() -> int | None:
    """The process's soft descriptor limit now (None: unknown or unlimited)."""
    if resource is None:  # pragma: no cover
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def reserve(limit: int) -> int:
    """Descriptors left for everything but provider connections: an eighth, at least 64."""
    return max(RESERVE_MIN, limit // 8)


def raise_descriptor_limit(wanted: int = WANTED_DESCRIPTORS) -> None:
    """Lift the soft descriptor limit to ``wanted`` (or the hard limit, if lower)."""
    if resource is None:  # pragma: no cover
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # pragma: no cover - a sandbox may forbid it
            pass


class Admission:
    """The count of open provider connections in this process, and the admission rule."""

    def __init__(self) -> None:
        self.open = 0
        self.refused = 0

    def admit(self, listener_open: int, cap: int) -> bool:
        """Whether a new connection to a listener holding ``listener_open`` may stay."""
        if listener_open >= cap:
            return self._refuse(f"the listener holds its cap of {cap} connections")
        limit = descriptor_limit()
        if limit is not None and self.open >= limit - reserve(limit):
            return self._refuse(f"{self.open} connections near the descriptor limit {limit}")
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1

    def _refuse(self, why: str) -> bool:
        self.refused += 1
        if self.refused & (self.refused - 1) == 0:  # the 1st, 2nd, 4th, 8th ... refusal
            log.warning("refusing new connections (%d so far): %s", self.refused, why)
        return False


ADMISSION = Admission()  # one per process: the descriptors are the process's
