"""The device side over real sockets: what iOS makes of ``aps``, the background-push budget,
and the simulated user (notifications off, opened notifications, the opens feed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from h2clients import H2Client, make_token

from simulator.testing.handle import SimulatorHandle

BUNDLE = "com.example.pushsim"


class Ios:
    def __init__(self, sim: SimulatorHandle) -> None:
        self.sim = sim
        self.token = make_token(sim.state_dir)
        self.c = H2Client(sim.endpoints["apns"], sim.endpoints["ca_file"])

    def send(self, dev: dict[str, Any], payload: dict[str, Any], **headers: str) -> int:
        hdrs = [("authorization", f"bearer {self.token}"), ("apns-topic", BUNDLE)]
        hdrs += [(k.replace("_", "-"), v) for k, v in headers.items()]
        status, _, _ = self.c.request(
            f"/3/device/{dev['token']}", hdrs, json.dumps(payload).encode()
        )
        return status

    def last(self, dev: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = self.sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")[
            "messages"
        ][-1]
        return entry


@pytest.fixture
def ios(sim: SimulatorHandle) -> Iterator[Ios]:
    i = Ios(sim)
    yield i
    i.c.close()


def test_aps_semantics_are_recorded(ios: Ios, sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    critical = {
        "aps": {
            "alert": {"title": "Fire", "body": "Leave now"},
            "interruption-level": "critical",
            "sound": {"critical": 1, "name": "alarm.caf", "volume": 0.9},
            "relevance-score": 0.8,
            "thread-id": "alarms",
            "target-content-id": "door-1",
            "mutable-content": 1,
        }
    }
    assert ios.send(dev, critical) == 200
    shown = ios.last(dev)["display"]
    assert shown["interruption_level"] == "active" and shown["requested_level"] == "critical"
    assert shown["sound"] == {"name": "alarm.caf", "critical": False, "volume": 0.9}
    assert len(shown["problems"]) == 2 and all("entitlement" in p for p in shown["problems"])
    assert shown["service_extension"] is True and shown["relevance_score"] == 0.8
    assert shown["thread_id"] == "alarms" and shown["target_content_id"] == "door-1"
    sim.control("PATCH", f"/_sim/apns/apps/{BUNDLE}", {"critical_alerts": True})
    assert ios.send(dev, critical) == 200
    shown = ios.last(dev)["display"]
    assert shown["interruption_level"] == "critical" and shown["sound"]["critical"] is True
    assert shown["problems"] == [] and shown["kind"] == "alert" and shown["visible"] is True
    odd = {"aps": {"alert": "x", "interruption-level": "loud", "relevance-score": 3}}
    assert ios.send(dev, odd) == 200
    shown = ios.last(dev)["display"]
    assert shown["interruption_level"] == "active" and len(shown["problems"]) == 2
    assert ios.send(dev, {"aps": {"badge": 3}}) == 200
    assert ios.last(dev)["display"]["visible"] is False and ios.last(dev)["shown"] is False


def test_background_pushes_are_budgeted_and_coalesced(ios: Ios, sim: SimulatorHandle) -> None:
    sim.control(
        "PATCH",
        "/_sim/apns/live-activities/config",
        {"background_per_hour": 2, "background_burst": 2},
    )
    dev = sim.mint("apns")[0]
    silent = {"aps": {"content-available": 1}}
    ids = []
    for n in range(4):
        apns_id = f"00000000-0000-4000-8000-00000000000{n}"
        assert ios.send(
            dev, silent, apns_push_type="background", apns_priority="5", apns_id=apns_id
        )
        ids.append(apns_id)
    box = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"]
    marks = [m["background"] for m in box]
    assert marks[0] == marks[1] == {"woke_app": True}
    assert marks[2] == {"held": False, "woke_app": False, "coalesced_into": ids[3]}
    assert marks[3]["held"] is True and marks[3]["wakes_at"] > box[3]["at"] + 1000
    counts = sim.control("GET", "/_sim/stats")["apns_live"]["background"]
    assert counts["woke_app"] == 2 and counts["held"] == 2 and counts["coalesced"] == 1


def test_the_user_turns_notifications_off_or_opens_them(ios: Ios, sim: SimulatorHandle) -> None:
    off, opener = sim.mint("apns", 2)
    assert (
        sim.control("PATCH", f"/_sim/devices/{off['id']}/user", {"notifications": "off"})[
            "notifications"
        ]
        == "off"
    )
    sim.control("PATCH", f"/_sim/devices/{opener['id']}/user", {"open_probability": 1})
    alert = {"aps": {"alert": "hello"}, "correlation_id": "c-1"}
    assert ios.send(off, alert) == 200 and ios.send(opener, alert) == 200
    silenced = ios.last(off)
    assert silenced["shown"] is False and "turned off" in silenced["not_shown"]
    opened = ios.last(opener)
    assert opened["shown"] is True and opened["opened"] is True
    feed = sim.control("GET", "/_sim/opens?since=0")
    assert [o["device_id"] for o in feed["opens"]] == [opener["id"]]
    assert feed["opens"][0]["correlation_id"] == "c-1" and feed["last_seq"] == 1
    assert sim.control("GET", "/_sim/opens?since=1")["opens"] == []
    users = sim.control("GET", "/_sim/stats")["device_users"]
    assert users["shown"] == 1 and users["opened"] == 1 and users["not_shown_off"] == 1
    # a share of devices with notifications off, picked by the seed
    sim.control("PATCH", "/_sim/users", {"notifications_off_share": 1.0})
    third = sim.mint("apns")[0]
    assert sim.control("GET", f"/_sim/devices/{third['id']}/user")["notifications"] == "off"
    sim.control("DELETE", f"/_sim/devices/{off['id']}/user")
    assert sim.control("GET", f"/_sim/devices/{off['id']}/user")["own"] == []


def test_an_android_device_shows_notification_messages_only(sim: SimulatorHandle) -> None:
    from simulator.testing.fcm import access_token, client, send

    dev = sim.mint("fcm")[0]
    sim.control("PATCH", f"/_sim/devices/{dev['id']}/user", {"open_probability": 1})
    with client(sim) as c:
        token = access_token(sim)
        assert send(c, token, {"token": dev["token"], "notification": {"title": "Hi"}}).is_success
        assert send(c, token, {"token": dev["token"], "data": {"k": "v"}}).is_success
    shown, data = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"]
    assert shown["display"] == {"kind": "notification", "visible": True, "title": "Hi"}
    assert shown["shown"] is True and shown["opened"] is True
    assert data["display"]["visible"] is False and data["shown"] is False
