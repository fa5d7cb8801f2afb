"""Pure cores behind the live-activities scenario: its fields, the funnel measure, the
objective, and the device-side decisions (budget, users, declarative, aps)."""

from __future__ import annotations

import random

import pytest

from loadtests.judge.funnel import funnel
from loadtests.judge.objectives import Objective, judge_one
from loadtests.scenario.load import ScenarioError, load, loads
from pushsim.clock import FakeClock
from simulator.providers.apns.aps import display
from simulator.providers.webpush.declarative import declarative_problem
from simulator.state.background import BackgroundBudget

BASE = """
name: t
population: {devices: {apns: 4}, users: 2}
"""


def test_live_activities_and_user_fields_load() -> None:
    sc = loads(
        BASE
        + "traffic: {live_activities: {share: 0.4, devices: 3}}\n"
        + "devices: {open_probability: 0.5, notifications_off: 0.2}\n"
    )
    assert sc.traffic.live_activities == {"share": 0.4, "broadcast": 0.5, "devices": 3.0}
    assert sc.devices.open_probability == 0.5 and sc.devices.notifications_off == 0.2
    plain = loads(BASE)
    assert plain.traffic.live_activities == {} and plain.devices.open_probability == 0.0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("traffic: {live_activities: {share: 2}}", "traffic.live_activities.share"),
        ("traffic: {live_activities: {devices: 0}}", "traffic.live_activities.devices"),
        ("traffic: {live_activities: {channels: 2}}", "traffic.live_activities"),
        ("devices: {open_probability: -1}", "devices.open_probability"),
        ("devices: {notifications_off: yes}", "devices.notifications_off"),
    ],
)
def test_bad_fields_are_named(extra: str, field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        loads(BASE + extra + "\n", "my.yaml")
    assert field in str(info.value) and "my.yaml" in str(info.value)


def test_the_bundled_scenario_exercises_both_kinds() -> None:
    sc = load("live-activities", quick=True)
    live = sc.traffic.live_activities
    assert live["share"] > 0 and 0 < live["broadcast"] < 1 and live["devices"] >= 1
    assert {o.name for o in sc.objectives} >= {"min_open_funnel_accuracy", "max_lost"}


def test_the_funnel_compares_the_senders_opens_with_the_users() -> None:
    stats = {"device_users": {"delivered": 10, "shown": 8, "opened": 4}}
    key = 'pushsim_sender_receipts_total{event="opened"}'
    m = funnel(stats, {key: 1.0}, {key: 4.0, "pushsim_sender_sent_total": 9.0})
    assert m["sender_opened"] == 3.0 and m["open_funnel_accuracy"] == 0.75
    assert m["device_shown"] == 8
    assert funnel(stats, None, {key: 5.0})["open_funnel_accuracy"] == 0.75
    assert funnel(stats, {}, {"pushsim_sender_sent_total": 1.0})["open_funnel_accuracy"] == 0.0
    none = funnel({"device_users": {"opened": 0}}, {}, {key: 0.0})
    assert (
        none["open_funnel_accuracy"] is None
        and "open_probability" in none["open_funnel_accuracy__why"]
    )
    assert funnel({}, {}, {})["open_funnel_accuracy"] is None
    verdict = judge_one(Objective("min_open_funnel_accuracy", 0.9), m)
    assert not verdict.passed and "0.75" in verdict.detail


def test_background_budget_holds_then_wakes_and_keeps_only_deviations() -> None:
    clock = FakeClock(1000.0)
    budget = BackgroundBudget(per_hour=2, burst=1)
    first, second, third = ({"message_id": str(i)} for i in range(3))
    assert budget.admit("d", first, clock.time()) == {"woke_app": True}
    held = budget.admit("d", second, clock.time())
    assert held == {"held": True, "wakes_at": 1000.0 + 1800.0}
    budget.admit("d", third, clock.time())
    assert second["background"]["coalesced_into"] == "2"
    clock.advance(3 * 3600)
    assert budget.admit("d", {"message_id": "4"}, clock.time()) == {"woke_app": True}
    assert budget.counts()["devices_tracked"] == 1 and budget.counts()["coalesced"] == 1
    roomy = BackgroundBudget(per_hour=3600, burst=2)
    roomy.admit("e", {}, 0.0)
    assert roomy.counts()["devices_tracked"] == 1
    assert roomy.prune(10.0) == 1 and roomy.counts()["devices_tracked"] == 0  # refilled


def test_aps_display_and_declarative_rules() -> None:
    shown = display(
        {"alert": {"body": "x"}, "interruption-level": "time-sensitive"}, "alert", False
    )
    assert shown["kind"] == "alert" and shown["interruption_level"] == "time-sensitive"
    silent = display({"content-available": 1}, "background", False)
    assert silent["kind"] == "background" and silent["visible"] is False
    voip = display({"alert": "ring"}, "voip", False)
    assert voip["kind"] == "voip" and voip["visible"] is False
    assert declarative_problem({"web_push": True, "notification": {}}) == "web_push must be 8030"
    ok = {"web_push": 8030, "notification": {"title": "t", "navigate": "https://a.example"}}
    assert declarative_problem(ok) == ""
    bad_action = {**ok, "notification": {**ok["notification"], "actions": [{"action": "a"}]}}
    assert "actions[0].title" in declarative_problem(bad_action)


def test_users_are_seeded() -> None:
    from simulator.state.device_user import SimulatedUsers

    a, b = (SimulatedUsers(FakeClock(0.0), random.Random(7)) for _ in range(2))
    for users in (a, b):
        users.update_defaults({"notifications_off_share": 0.5})
    ids = [f"apns-{n}" for n in range(200)]
    off_a = [a.settings(i)["notifications"] for i in ids]
    assert off_a == [b.settings(i)["notifications"] for i in ids]
    assert 60 < off_a.count("off") < 140
    assert a.update_defaults({"open_probability": 1.5}) is not None
    assert a.update_device("apns-1", {"notifications": "maybe"}) is not None
