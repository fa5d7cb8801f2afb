"""The stream-limit state machine (pure): what a new stream gets, SETTINGS by SETTINGS."""

from __future__ import annotations

from simulator.server.streamlimit import Admit, StreamRules, initial_limit


def test_before_any_ack_only_the_ceiling_bounds_a_connection() -> None:
    limit = initial_limit(StreamRules(initial=1, ceiling=1000))
    assert limit.threshold() == 1000
    assert limit.admit(open_streams=4, counted=4) is Admit.OPEN
    assert limit.admit(open_streams=1000, counted=1000) is Admit.REFUSE


def test_an_acknowledged_limit_counts_only_streams_opened_after_the_ack() -> None:
    limit = initial_limit(StreamRules(initial=1, ceiling=1000))
    limit.acked(highest_stream_id=9)  # five streams were opened in the first flight
    assert limit.acknowledged == 1 and limit.counts_from() == 9
    assert limit.admit(open_streams=5, counted=0) is Admit.OPEN
    assert limit.admit(open_streams=6, counted=1) is Admit.VIOLATION


def test_a_lowered_limit_binds_only_once_acknowledged() -> None:
    limit = initial_limit(StreamRules(initial=1, ceiling=1000))
    limit.acked(1)
    limit.sent(1000)  # the grant
    limit.acked(1)
    limit.sent(1)  # narrowed after a rejection: in flight, not acknowledged
    assert limit.acknowledged == 1000
    assert limit.admit(open_streams=50, counted=50) is Admit.OPEN
    limit.acked(101)
    assert limit.acknowledged == 1 and limit.counts_from() == 101
    assert limit.admit(open_streams=50, counted=0) is Admit.OPEN
    assert limit.admit(open_streams=51, counted=1) is Admit.VIOLATION


def test_acks_follow_the_settings_frames_in_order_and_frames_without_the_limit() -> None:
    limit = initial_limit(StreamRules(initial=100, ceiling=100))
    limit.sent(None)  # a SETTINGS frame about something else
    limit.sent(10)
    limit.acked(0)
    assert limit.acknowledged == 100
    limit.acked(0)
    assert limit.acknowledged == 100
    limit.acked(3)
    assert limit.acknowledged == 10 and limit.counts_from() == 3
    limit.acked(5)  # an ACK of nothing changes nothing
    assert limit.acknowledged == 10 and limit.counts_from() == 3


def test_strict_before_ack_holds_every_stream_to_the_lowest_limit_sent() -> None:
    limit = initial_limit(StreamRules(initial=1, ceiling=1000, strict_before_ack=True))
    assert limit.threshold() == 1 and limit.counts_from() == 0
    assert limit.admit(open_streams=0, counted=0) is Admit.OPEN
    assert limit.admit(open_streams=1, counted=1) is Admit.REFUSE  # not acknowledged yet
    limit.acked(1)
    assert limit.admit(open_streams=1, counted=1) is Admit.VIOLATION
    limit.sent(1000)
    assert limit.admit(open_streams=1, counted=1) is Admit.VIOLATION  # 1000 not acknowledged
    limit.acked(1)
    assert limit.admit(open_streams=999, counted=999) is Admit.OPEN


def test_the_ceiling_is_never_below_the_initial_limit() -> None:
    assert StreamRules(initial=2000, ceiling=1000).ceiling == 2000
