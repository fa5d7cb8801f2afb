"""The FCM Topic Subscription API over real sockets (httpx, HTTP/2): create, get, list,
patch and delete, by registration token or installation ID, beside the Instance ID API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from simulator.testing.fcm import PROJECT, access_token, client, error_code, send
from simulator.testing.handle import SimulatorHandle

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def fcm(sim: SimulatorHandle) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    with client(sim) as c:
        yield c, {"authorization": f"Bearer {access_token(sim)}"}


def subs(registration: str, project: str = PROJECT) -> str:
    return f"/v1/projects/{project}/registrations/{quote(registration, safe='')}/topicSubscriptions"


def test_create_get_list_patch_delete(
    sim: SimulatorHandle, fcm: tuple[httpx.Client, dict[str, str]]
) -> None:
    c, auth = fcm
    dev = sim.mint("fcm")[0]
    base = subs(dev["token"])
    r = c.post(f"{base}?topic_name=news", headers=auth, json={})
    assert r.status_code == 200
    res = r.json()
    assert res["name"] == f"projects/{PROJECT}/registrations/{dev['token']}/topicSubscriptions/news"
    assert res["topic_name"] == "news" and RFC3339.match(res["create_time"])
    again = c.post(f"{base}?topic_name=news", headers=auth, json={})
    assert again.status_code == 409 and again.json()["error"]["status"] == "ALREADY_EXISTS"
    assert c.get(f"{base}/news", headers=auth).json() == res
    missing = c.get(f"{base}/sport", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    assert c.patch(f"{base}/sport", headers=auth, json={}).status_code == 404
    r = c.patch(f"{base}/sport?allowMissing=true", headers=auth, json={})
    assert r.status_code == 200 and r.json()["topic_name"] == "sport"
    assert c.patch(f"{base}/sport", headers=auth, json={}).json() == r.json()  # as it is
    # the body may name the topic instead of the query
    assert c.post(base, headers=auth, json={"topic_name": "weather"}).status_code == 200
    listed = c.get(f"{base}?pageSize=2", headers=auth).json()
    assert [s["topic_name"] for s in listed["topic_subscriptions"]] == ["news", "sport"]
    rest = c.get(f"{base}?pageToken={listed['next_page_token']}", headers=auth).json()
    assert [s["topic_name"] for s in rest["topic_subscriptions"]] == ["weather"]
    assert "next_page_token" not in rest
    # one set of subscriptions: a topic send reaches the device, the IID view lists them
    info = c.get(f"/iid/info/{dev['token']}", headers=auth).json()
    assert set(info["rel"]["topics"]) == {"news", "sport", "weather"}
    assert send(c, auth["authorization"][7:], {"topic": "sport", "data": {"k": "v"}}).is_success
    inbox = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"]
    assert [m["from"] for m in inbox] == ["/topics/sport"]
    assert c.delete(f"{base}/sport", headers=auth).json() == {}
    assert c.delete(f"{base}/sport", headers=auth).status_code == 404
    assert c.delete(f"{base}/sport?allow_missing=true", headers=auth).status_code == 200


def test_by_installation_id(sim: SimulatorHandle, fcm: tuple[httpx.Client, dict[str, str]]) -> None:
    c, auth = fcm
    dev = sim.mint("fcm")[0]
    fid = dev["token"].partition(":")[0]
    r = c.post(f"{subs(fid)}?topic_name=alerts", headers=auth, json={})
    assert r.status_code == 200 and f"/registrations/{fid}/" in r.json()["name"]
    # the same subscription seen through the token
    assert c.get(f"{subs(dev['token'])}/alerts", headers=auth).status_code == 200
    sim.control("POST", f"/_sim/devices/{dev['id']}/rotate")
    gone = c.get(f"{subs(fid)}/alerts", headers=auth)
    assert (gone.status_code, error_code(gone)) == (404, "UNREGISTERED")


def test_reasons(sim: SimulatorHandle, fcm: tuple[httpx.Client, dict[str, str]]) -> None:
    c, auth = fcm
    dev = sim.mint("fcm")[0]
    other = sim.mint("fcm", app="other-project")[0]
    mine, elsewhere = subs(dev["token"]), subs(dev["token"], "other-project")
    cases: list[tuple[Any, int, str]] = [
        (c.post(f"{mine}?topic_name=bad%20name", headers=auth), 400, "INVALID_ARGUMENT"),
        (c.post(mine, headers=auth, json={}), 400, "INVALID_ARGUMENT"),
        (c.get(f"{subs('never-issued')}/news", headers=auth), 400, "INVALID_ARGUMENT"),
        (c.get(f"{subs(other['token'])}/news", headers=auth), 403, "SENDER_ID_MISMATCH"),
        (c.get(f"{elsewhere}/news", headers=auth), 403, "PERMISSION_DENIED"),
        (c.get(f"{mine}?pageToken=x", headers=auth), 400, "INVALID_ARGUMENT"),
        (c.get(f"{mine}/news"), 401, "UNAUTHENTICATED"),
    ]
    for r, status, code in cases:
        assert (r.status_code, error_code(r) or r.json()["error"]["status"]) == (status, code)
    assert c.put(f"{subs(dev['token'])}/news", headers=auth).status_code == 404
