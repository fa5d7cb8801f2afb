"""Never-processed requests (pure): the record's ledger and the harness measure over it."""

from __future__ import annotations

from loadtests.judge.measures import GroundTruth, compute
from loadtests.judge.objectives import Objective, judge_one
from simulator.faults.record import FaultRecord
from simulator.faults.unprocessed import UnprocessedLedger


def test_a_later_send_to_the_same_token_retries_what_was_lost() -> None:
    u = UnprocessedLedger()
    u.lost(1.0, 101.0, "apns", "refused_stream", 7, 3, "aa", "c-1")
    u.lost(1.0, 101.0, "apns", "goaway", 7, 5, "aa", None)
    u.lost(1.5, 101.5, "apns", "goaway", 7, 7, "bb", None)
    u.lost(1.5, 101.5, "fcm", "refused_stream", 8, 9, None, None)  # no token: unmatched
    assert u.not_retried() == {"apns": 3}
    u.sent("apns", "aa", 2.0)
    u.sent("fcm", "aa", 2.0)  # another provider's token of the same name retries nothing
    assert u.not_retried() == {"apns": 1} and u.retried == {"apns": 2}
    assert u.unmatched == {"fcm": 1} and u.lost_count == {"apns": 3, "fcm": 1}
    first = u.events[0]
    assert first == {
        "at": 1.0,
        "wall": 101.0,
        "provider": "apns",
        "reason": "refused_stream",
        "conn": 7,
        "stream": 3,
        "token": "aa",
        "retried_at": 2.0,
        "correlation_id": "c-1",
    }
    assert u.events[2]["retried_at"] is None


def test_the_record_reports_them_in_stats_and_timeline_and_shifts_them() -> None:
    record = FaultRecord(started_wall=1000.0)
    record.unprocessed.lost(5.0, 1005.0, "fcm", "goaway", 1, 201, "tok", None)
    stats = record.stats()
    assert stats["unprocessed_streams"]["fcm"] == 1
    assert stats["unprocessed_not_retried"] == {"apns": 0, "fcm": 1, "webpush": 0}
    record.shift(2.0)
    timeline = record.timeline(now=10.0)
    assert timeline["unprocessed"][0]["at"] == 3.0
    assert timeline["unprocessed_not_retried"]["fcm"] == 1


def _truth(sim_stats: dict[str, object]) -> GroundTruth:
    return GroundTruth(
        sent=[],
        deliveries=[],
        feed=[],
        dead_tokens=[],
        sim_stats=sim_stats,  # type: ignore[arg-type]
        sender_dead=None,
        sender_active=None,
        metrics_start=None,
        metrics_end=None,
    )


def test_safe_to_retry_not_retried_is_a_measure_a_scenario_can_bound() -> None:
    record = FaultRecord(started_wall=0.0)
    record.unprocessed.lost(1.0, 1.0, "apns", "goaway", 1, 3, "aa", None)
    record.unprocessed.lost(1.0, 1.0, "apns", "goaway", 1, 5, "bb", None)
    record.unprocessed.sent("apns", "bb", 2.0)
    measures = compute(_truth({"faults": record.stats()}))
    assert measures["unprocessed_not_retried"] == 1
    verdict = judge_one(Objective("max_unprocessed_not_retried", 0), measures)
    assert not verdict.passed and "unprocessed_not_retried = 1" in verdict.detail
    assert judge_one(Objective("max_unprocessed_not_retried", 1), measures).passed
    unknown = compute(_truth({}))
    assert unknown["unprocessed_not_retried"] is None and unknown["unprocessed_not_retried__why"]
