"""FCM over real sockets with a plain client (httpx, HTTP/2 and HTTP/1.1): every errorCode,
the Instance ID API, store-and-forward, and malformed input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator.testing.fcm import PROJECT, access_token, client, error_code, send
from simulator.testing.handle import SimulatorHandle


@pytest.fixture(params=["h2", "http/1.1"])
def fcm(request: pytest.FixtureRequest, sim: SimulatorHandle) -> Iterator[tuple[httpx.Client, str]]:
    with client(sim, http2=request.param == "h2") as c:
        yield c, access_token(sim)


def inbox(sim: SimulatorHandle, dev: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")[
        "messages"
    ]
    return messages


def test_every_error_code(sim: SimulatorHandle, fcm: tuple[httpx.Client, str]) -> None:
    c, token = fcm
    ok, dead = sim.mint("fcm", 2)
    other = sim.mint("fcm", app="other-project")[0]
    sim.control("DELETE", f"/_sim/devices/{dead['id']}")

    r = send(c, token, {"token": ok["token"], "data": {"correlation_id": "w-1"}})
    assert r.status_code == 200 and r.json()["name"].startswith(f"projects/{PROJECT}/messages/")
    expected_version = "HTTP/2" if c._transport._pool._http2 else "HTTP/1.1"  # type: ignore[attr-defined]
    assert r.http_version == expected_version

    r = send(c, token, {"token": "never-issued"})
    assert (r.status_code, error_code(r)) == (400, "INVALID_ARGUMENT")
    violations = r.json()["error"]["details"][1]
    assert violations["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert violations["fieldViolations"][0]["field"] == "message.token"

    r = send(c, token, {"token": dead["token"]})
    assert (r.status_code, r.json()["error"]["status"], error_code(r)) == (
        404,
        "NOT_FOUND",
        "UNREGISTERED",
    )
    assert any(
        t["token"] == dead["token"] for t in sim.control("GET", "/_sim/dead_tokens")["tokens"]
    )

    r = send(c, token, {"token": other["token"]})
    assert (r.status_code, r.json()["error"]["status"], error_code(r)) == (
        403,
        "PERMISSION_DENIED",
        "SENDER_ID_MISMATCH",
    )

    sim.control("POST", "/_sim/fcm/config", {"projects": {PROJECT: {"apns_credentials": False}}})
    r = send(c, token, {"token": ok["token"], "apns": {"payload": {"aps": {"alert": "x"}}}})
    assert (r.status_code, r.json()["error"]["status"], error_code(r)) == (
        401,
        "UNAUTHENTICATED",
        "THIRD_PARTY_AUTH_ERROR",
    )

    sim.control("POST", "/_sim/fcm/errors", {"errorCode": "INTERNAL"})
    r = send(c, token, {"token": ok["token"]})
    assert (r.status_code, error_code(r)) == (500, "INTERNAL")

    sim.control("POST", "/_sim/fcm/errors", {"errorCode": "UNAVAILABLE", "retry_after": 7})
    r = send(c, token, {"token": ok["token"]})
    assert (r.status_code, error_code(r), r.headers["retry-after"]) == (503, "UNAVAILABLE", "7")

    sim.control("POST", "/_sim/fcm/config", {"quota": {"device_per_minute": 2}})
    assert send(c, token, {"token": ok["token"]}).status_code == 200
    assert send(c, token, {"token": ok["token"]}).status_code == 200
    r = send(c, token, {"token": ok["token"]})
    assert (r.status_code, r.json()["error"]["status"], error_code(r)) == (
        429,
        "RESOURCE_EXHAUSTED",
        "QUOTA_EXCEEDED",
    )
    assert 55 <= int(r.headers["retry-after"]) <= 60

    stats = sim.control("GET", "/_sim/stats")["providers"]["fcm"]
    for code in (
        "INVALID_ARGUMENT",
        "UNREGISTERED",
        "SENDER_ID_MISMATCH",
        "THIRD_PARTY_AUTH_ERROR",
        "INTERNAL",
    ):
        assert stats[code] >= 1, code
    assert stats["QUOTA_EXCEEDED"] == 1 and stats["delivered"] == 3
    assert inbox(sim, ok)[0]["correlation_id"] == "w-1"


def test_fault_plan_errors_reach_fcm(sim: SimulatorHandle, fcm: tuple[httpx.Client, str]) -> None:
    c, token = fcm
    dev = sim.mint("fcm")[0]
    sim.control(
        "POST",
        "/_sim/faults",
        {"kind": "errors", "provider": "fcm", "probability": 1.0, "duration": "60s"},
    )
    r = send(c, token, {"token": dev["token"]})
    assert (r.status_code, error_code(r)) == (500, "INTERNAL")
    sim.control("DELETE", "/_sim/faults")
    assert send(c, token, {"token": dev["token"]}).status_code == 200


def test_authentication(sim: SimulatorHandle, fcm: tuple[httpx.Client, str]) -> None:
    c, token = fcm
    dev = sim.mint("fcm")[0]
    r = c.post(f"/v1/projects/{PROJECT}/messages:send", json={"message": {"token": dev["token"]}})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert send(c, "ya29.made-up", {"token": dev["token"]}).status_code == 401
    r = send(c, token, {"token": dev["token"]}, project="someone-else")
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"


def test_instance_id_api_and_fan_out(sim: SimulatorHandle, fcm: tuple[httpx.Client, str]) -> None:
    c, token = fcm
    a, b, dead = sim.mint("fcm", 3)
    sim.control("DELETE", f"/_sim/devices/{dead['id']}")
    auth = {"authorization": f"Bearer {token}", "access_token_auth": "true"}
    body = {
        "to": "/topics/weather",
        "registration_tokens": [a["token"], b["token"], dead["token"], "junk"],
    }
    r = c.post("/iid/v1:batchAdd", headers=auth, json=body)
    assert r.status_code == 200
    assert r.json() == {"results": [{}, {}, {"error": "NOT_FOUND"}, {"error": "INVALID_ARGUMENT"}]}
    info = c.get(f"/iid/info/{a['token']}", headers=auth).json()
    assert "weather" in info["rel"]["topics"]

    r = send(c, token, {"topic": "weather", "notification": {"title": "Rain"}})
    assert r.status_code == 200
    assert [m["from"] for m in inbox(sim, a)] == ["/topics/weather"] and len(inbox(sim, b)) == 1

    assert (
        c.post(
            "/iid/v1:batchRemove", headers=auth, json={**body, "registration_tokens": [a["token"]]}
        ).status_code
        == 200
    )
    send(c, token, {"condition": "'weather' in topics", "data": {"k": "v"}})
    assert len(inbox(sim, a)) == 1 and len(inbox(sim, b)) == 2

    assert c.post("/iid/v1:batchAdd", headers=auth, json={"to": "weather"}).status_code == 400
    too_many = {"to": "/topics/x", "registration_tokens": ["t"] * 1001}
    assert c.post("/iid/v1:batchAdd", headers=auth, json=too_many).status_code == 400
    assert c.post("/iid/v1:batchAdd", json=body).status_code == 401


def test_topic_message_size_limit(sim: SimulatorHandle, fcm: tuple[httpx.Client, str]) -> None:
    c, token = fcm
    r = send(c, token, {"topic": "big", "data": {"k": "x" * 2100}})
    assert (r.status_code, error_code(r)) == (400, "INVALID_ARGUMENT")
    dev = sim.mint("fcm")[0]
    assert send(c, token, {"token": dev["token"], "data": {"k": "x" * 2100}}).status_code == 200


def test_offline_device_gets_pending_on_reconnect(
    sim: SimulatorHandle, fcm: tuple[httpx.Client, str]
) -> None:
    c, token = fcm
    dev = sim.mint("fcm")[0]
    sim.control("POST", f"/_sim/devices/{dev['id']}/online", {"online": False})
    sim.control("POST", "/_sim/fcm/config", {"max_pending": 3})
    for i in range(5):  # the 4th overflows: the first three are dropped
        assert send(c, token, {"token": dev["token"], "data": {"n": str(i)}}).status_code == 200
    assert inbox(sim, dev) == []
    sim.control("POST", f"/_sim/devices/{dev['id']}/online", {"online": True})
    seen = inbox(sim, dev)
    assert seen[0]["event"] == "deleted_messages" and seen[0]["dropped"] == 3
    assert [m["data"]["n"] for m in seen[1:]] == ["3", "4"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"{", 400),
        (b"[]", 400),
        (b'{"message": 5}', 400),
        (b'{"message": {"token": "t"}, "extra": 1}', 400),
        (b'{"message": {"token": "t"}, "validate_only": "yes"}', 400),
        (b"\xff\xfe", 400),
    ],
)
def test_malformed_bodies(sim: SimulatorHandle, body: bytes, status: int) -> None:
    with client(sim) as c:
        token = access_token(sim)
        r = c.post(
            f"/v1/projects/{PROJECT}/messages:send",
            headers={"authorization": f"Bearer {token}"},
            content=body,
        )
    assert r.status_code == status and r.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_unknown_paths_and_methods(sim: SimulatorHandle) -> None:
    with client(sim) as c:
        assert c.get(f"/v1/projects/{PROJECT}/messages:send").status_code == 404
        assert c.post("/v1/nothing").status_code == 404
        assert c.post("/v1/projects//messages:send").status_code == 404
        r = c.post("/", content=b"\x00" * 10)
        assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
