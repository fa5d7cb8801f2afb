"""Declarative Web Push and RFC 8030 receipts over real sockets (pywebpush, httpx)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from simulator.testing.handle import SimulatorHandle

DECLARATIVE = {
    "web_push": 8030,
    "notification": {
        "title": "Goal!",
        "body": "2-1",
        "navigate": "https://app.example.com/match/7",
        "lang": "en",
        "dir": "ltr",
        "silent": False,
        "app_badge": "3",
    },
    "mutable": True,
}


@pytest.fixture
def vapid(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.endpoints["ca_file"])
    meta: dict[str, str] = json.loads((sim.state_dir / "webpush" / "vapid.json").read_text())
    return meta


@pytest.fixture
def http(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=sim.endpoints["ca_file"])
    with httpx.Client(http2=True, verify=ctx, timeout=10) as c:
        yield c


def push(dev: dict[str, Any], vapid: dict[str, str], body: Any, **headers: str) -> Any:
    return webpush(
        dev["subscription"],
        body if isinstance(body, str) else json.dumps(body),
        vapid_private_key=Vapid02.from_pem(vapid["private_key"].encode()),
        vapid_claims={"sub": vapid["subject"]},
        ttl=60,
        headers=headers or None,
    )


def last(sim: SimulatorHandle, dev: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"][-1]
    return entry


def test_declarative_messages_are_shown_as_the_browser_would(
    sim: SimulatorHandle, vapid: dict[str, str]
) -> None:
    dev = sim.mint("webpush")[0]
    assert push(dev, vapid, DECLARATIVE).status_code == 201
    shown = last(sim, dev)["display"]
    assert shown["kind"] == "declarative" and shown["title"] == "Goal!"
    assert shown["navigate"] == "https://app.example.com/match/7" and shown["app_badge"] == 3
    assert shown["mutable"] is True and "service_worker" in shown
    assert last(sim, dev)["shown"] is True
    n = DECLARATIVE["notification"]
    broken = [
        ({**DECLARATIVE, "web_push": 8031}, "web_push"),
        ({"web_push": 8030, "notification": {"navigate": "https://a.example"}}, "title"),
        ({"web_push": 8030, "notification": {"title": "t"}}, "navigate"),
        ({"web_push": 8030, "notification": {"title": "t", "navigate": "ftp://x"}}, "navigate"),
        ({"web_push": 8030, "notification": {**n, "dir": "up"}}, "dir"),
        ({"web_push": 8030, "notification": {**n, "silent": 1}}, "silent"),
        ({"web_push": 8030, "notification": {**n, "app_badge": -1}}, "app_badge"),
        ({**DECLARATIVE, "mutable": "yes"}, "mutable"),
    ]  # fmt: skip
    for body, field in broken:
        assert push(dev, vapid, body).status_code == 201  # the push service cannot read it
        shown = last(sim, dev)["display"]
        assert shown["kind"] == "push_event" and field in shown["declarative_problem"], body
    assert push(dev, vapid, {"hello": "sw"}).status_code == 201
    assert last(sim, dev)["display"] == {"kind": "push_event", "visible": True}


def test_receipts_delivered_when_the_message_is(
    sim: SimulatorHandle, vapid: dict[str, str], http: httpx.Client
) -> None:
    base = sim.endpoints["webpush"]
    r = http.post(f"{base}/receipts")
    assert r.status_code == 201
    rs = r.headers["location"]
    assert rs.startswith(base + "/rs/")
    online, offline = sim.mint("webpush", 2)
    sim.control("POST", f"/_sim/devices/{offline['id']}/online", {"online": False})
    first = push(online, vapid, {"n": 1}, **{"Push-Receipt": rs})
    assert first.status_code == 202
    assert first.headers["link"] == f'<{rs}>; rel="urn:ietf:params:push:receipt"'
    second = push(offline, vapid, {"n": 2}, **{"Push-Receipt": rs, "Prefer": "respond-async"})
    assert second.status_code == 202
    got = http.get(rs).json()["receipts"]
    assert [g["message"] for g in got] == [first.headers["location"]]
    assert got[0]["status"] == 410 and http.get(rs).json() == {"receipts": []}
    sim.control("POST", f"/_sim/devices/{offline['id']}/online", {"online": True})
    got = http.get(rs).json()["receipts"]
    assert [g["message"] for g in got] == [second.headers["location"]]
    # Prefer: respond-async alone: the service makes a receipt subscription for the message
    third = push(online, vapid, {"n": 3}, Prefer="respond-async")
    assert third.status_code == 202
    link = third.headers["link"].split(";")[0].strip("<>")
    assert [g["message"] for g in http.get(link).json()["receipts"]] == [third.headers["location"]]
    # an unknown receipt subscription is refused; a plain push is still 201
    with pytest.raises(WebPushException) as refused:
        push(online, vapid, {"n": 4}, **{"Push-Receipt": f"{base}/rs/nope"})
    assert refused.value.response is not None and refused.value.response.status_code == 400
    assert push(online, vapid, {"n": 5}).status_code == 201
    assert http.get(f"{base}/rs/nope").status_code == 404
    assert http.get(f"{base}/receipts").status_code == 405
