"""One connection's MAX_CONCURRENT_STREAMS as its client can know it (pure: no I/O).

RFC 9113 section 6.5.3: a SETTINGS value the server sends can be relied on only once the
client has acknowledged it. A client that opens several streams in its first flight,
before it has read the server's SETTINGS, cannot know a limit lower than the RFC's
default (unlimited); nor can one whose streams were on the wire when the server lowered
the limit mid-connection (APNs narrows it to 1 after a rejected notification).

:class:`StreamLimit` follows the SETTINGS frames sent (:meth:`~StreamLimit.sent`) and the
client's ACKs of them (:meth:`~StreamLimit.acked`, in order, as RFC 9113 has them
acknowledged) and decides what a new stream gets (:meth:`~StreamLimit.admit`):

- lenient (the default): a limit counts from the moment it is acknowledged, and only
  streams opened after that ACK count against it. A stream over an acknowledged limit is a
  :attr:`Admit.VIOLATION` (production answers GOAWAY); before any ACK the only bound is
  the connection's ``ceiling`` (the most it is ever granted), beyond which a stream is
  refused (:attr:`Admit.REFUSE`, REFUSED_STREAM: not processed, safe to retry).
- ``strict_before_ack``: a limit counts from the moment it is sent, against every open
  stream; a stream over a limit the client has not acknowledged yet is refused, over an
  acknowledged one it is a violation.

The server loop (:mod:`simulator.server.frames`) feeds it and carries out its answer.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class Admit(enum.Enum):
    OPEN = "open"
    REFUSE = "refuse"  # RST_STREAM REFUSED_STREAM: never processed, safe to retry
    VIOLATION = "violation"  # over a limit the client acknowledged


@dataclass(frozen=True, slots=True)
class StreamRules:
    """How a listener holds its connections to their stream limit."""

    initial: int  # MAX_CONCURRENT_STREAMS in the server's first SETTINGS
    ceiling: int  # the most streams a connection may hold open, whatever was acknowledged
    strict_before_ack: bool = False

    def __post_init__(self) -> None:
        if self.ceiling < self.initial:
            object.__setattr__(self, "ceiling", self.initial)


@dataclass(slots=True)
class StreamLimit:
    """One connection's stream limit: acknowledged, pending, and from which stream it counts."""

    rules: StreamRules
    acknowledged: int | None = None  # None: no MAX_CONCURRENT_STREAMS acknowledged yet
    # MAX_CONCURRENT_STREAMS of each SETTINGS frame sent and not yet acknowledged (None: the
    # frame did not carry it), oldest first
    pending: deque[int | None] = field(default_factory=deque)
    since: int = 0  # the highest stream id opened when the limit in force was acknowledged

    def sent(self, value: int | None) -> None:
        """A SETTINGS frame went out; ``value``: its MAX_CONCURRENT_STREAMS, if it had one."""
        self.pending.append(value)

    def acked(self, highest_stream_id: int) -> None:
        """The client acknowledged the oldest SETTINGS frame outstanding; ``highest_stream_id``:
        the highest stream it had opened by then."""
        if not self.pending:
            return  # an ACK of nothing: h2 decides what that is
        value = self.pending.popleft()
        if value is not None:
            self.acknowledged = value
            self.since = highest_stream_id

    def counts_from(self) -> int:
        """Open streams with an id above this count against the limit."""
        return 0 if self.rules.strict_before_ack else self.since

    def threshold(self) -> int:
        """Below this many open streams (of any kind) a new stream is admitted without
        counting: the lowest bound :meth:`admit` may apply."""
        bound = self.rules.ceiling
        if self.acknowledged is not None:
            bound = min(bound, self.acknowledged)
        if self.rules.strict_before_ack:
            for value in self.pending:
                if value is not None:
                    bound = min(bound, value)
        return bound

    def admit(self, open_streams: int, counted: int) -> Admit:
        """What a new stream gets, with ``open_streams`` open on the connection of which
        ``counted`` were opened after :meth:`counts_from`."""
        acked = self.acknowledged
        if self.rules.strict_before_ack:
            if acked is not None and open_streams >= acked:
                return Admit.VIOLATION
            return Admit.REFUSE if open_streams >= self.threshold() else Admit.OPEN
        if acked is not None and counted >= acked:
            return Admit.VIOLATION
        return Admit.REFUSE if open_streams >= self.rules.ceiling else Admit.OPEN


def initial_limit(rules: StreamRules) -> StreamLimit:
    """A new connection's limit; its first SETTINGS (carrying ``rules.initial``) counts as
    sent before the client could have read it."""
    limit = StreamLimit(rules)
    limit.sent(rules.initial)
    return limit
