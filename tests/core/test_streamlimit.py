"""The stream-limit state machine (pure): what a new stream gets, SETTINGS by SETTINGS; and
the SETTINGS APNs asks for (grant, narrowing, restore)."""

from __future__ import annotations

from simulator.providers.apns.auth import ConnectionAuth
from simulator.providers.apns.streams import SETTINGS_MAX_CONCURRENT_STREAMS as MCS
from simulator.providers.apns.streams import follow_answer, grant
from simulator.server.streamlimit import Admit, StreamRules, initial_limit
from simulator.wire import ConnectionInfo


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


def test_apns_grants_once_narrows_after_a_rejection_and_restores_after_a_success() -> None:
    auth = ConnectionAuth()
    conn = ConnectionInfo(1, "apns", "2", True, None, 0.0)
    follow_answer(auth, conn, 410, 1000)  # not authorised yet: the limit is 1 anyway
    assert conn.pending_settings is None
    grant(auth, conn, 1000)
    assert conn.pending_settings == {MCS: 1000}
    conn.pending_settings = None
    grant(auth, conn, 1000)
    follow_answer(auth, conn, 200, 1000)
    assert conn.pending_settings is None  # granted once; a success changes nothing
    follow_answer(auth, conn, 410, 1000)
    assert conn.pending_settings == {MCS: 1}
    conn.pending_settings = None
    follow_answer(auth, conn, 429, 1000)  # already narrowed: no second SETTINGS
    follow_answer(auth, conn, 503, 1000)  # not a rejection of the notification
    assert conn.pending_settings is None
    follow_answer(auth, conn, 200, 1000)
    assert conn.pending_settings == {MCS: 1000}
