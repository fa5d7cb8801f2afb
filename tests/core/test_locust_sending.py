"""The app-server users' sending (pure parts): composing, instances in turn, batch answers,
and the fleet's combined metrics."""

from __future__ import annotations

import random

from loadtests.locust.sending import Answer, Audience, Instances, batch_outcomes, compose
from loadtests.run.fleet import carry, check_store_url, combine, redacted

POP = Audience(
    users=[("u1", ["d1", "d2"])],
    devices={
        "d1": {"device_id": "d1", "provider": "apns", "token": "ab" * 32},
        "d2": {"device_id": "d2", "provider": "fcm", "token": "t2"},
    },
    device_ids=["d1", "d2"],
    topic_devices={},
)


def test_compose_is_repeatable_and_keys_only_when_asked() -> None:
    traffic = {"to": {"user": 1.0}, "payload": {"medium": 1.0}}
    one = compose(random.Random(3), traffic, POP, "c-1", idempotent=False)
    two = compose(random.Random(3), traffic, POP, "c-1", idempotent=True)
    assert (
        one.record
        == two.record
        == {
            "c": "c-1",
            "kind": "user",
            "dev": ["d1", "d2"],
            "size": "medium",
            "push": "alert",
        }
    )
    assert one.values["idempotency_key"] is None
    assert two.values["idempotency_key"] == "c-1"
    assert len(one.values["pad"]) == 400


def test_instances_take_turns_and_list_the_rest_for_failover() -> None:
    inst = Instances(["http://a/", "http://b", "http://c"], first=1)
    assert inst.order() == ["http://b", "http://c", "http://a"]
    assert inst.order() == ["http://c", "http://a", "http://b"]
    assert Instances(["http://a"]).order() == [""]  # one instance: Locust's --host


def test_batch_entries_are_judged_one_by_one() -> None:
    doc = {"results": [{"id": "n1", "status": 202}, {"error": "bad token", "status": 400}, {}]}
    got = batch_outcomes(Answer(207, True, doc, 5.0, 0), 4, "id", "results")
    assert got == [(True, "n1", 202), (False, None, 400), (False, None, 207), (False, None, 207)]
    refused = batch_outcomes(Answer(413, False, None, 1.0, 0), 2, "id", "results")
    assert refused == [(False, None, 413), (False, None, 413)]


def test_fleet_metrics_sum_counters_keep_the_killed_and_take_the_largest_gauge() -> None:
    carried: dict[str, float] = {}
    carry(carried, {"pushsim_sender_sent_total": 7.0, "pushsim_sender_queue_depth": 3.0})
    assert carried == {"pushsim_sender_sent_total": 7.0}
    combined = combine(
        [
            {"pushsim_sender_sent_total": 2.0, "pushsim_sender_queue_depth": 4.0},
            None,
            {"pushsim_sender_sent_total": 1.0, "pushsim_sender_queue_depth": 9.0},
        ],
        carried,
    )
    assert combined == {"pushsim_sender_sent_total": 10.0, "pushsim_sender_queue_depth": 9.0}
    assert combine([None, None], carried) is None


def test_store_urls_stay_on_this_machine_and_hide_passwords() -> None:
    assert check_store_url("postgresql://u@127.0.0.1:5433/pushsim") is None
    assert "loopback" in (check_store_url("postgresql://db.example.com/pushsim") or "")
    assert "postgresql://" in (check_store_url("mysql://127.0.0.1/x") or "")
    assert "database name" in (check_store_url("postgresql://127.0.0.1:5432") or "")
    assert redacted("postgresql://u:secret@127.0.0.1/db") == "postgresql://u:***@127.0.0.1/db"
