"""``pushsim simulator --workers 2``: every provider on both processes, one ground truth.

The kernel spreads connections over the two processes (SO_REUSEPORT); each test opens
connections until ``/_sim/stats`` shows both processes hold some, so what it checks
crosses processes every time.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from h2clients import FCM_PATH, H2Client, fcm_body, make_token

from simulator.testing.fcm import signed_assertion
from simulator.testing.handle import simulator_process

Endpoints = dict[str, str]


def control(endpoints: Endpoints, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(endpoints["control"] + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Path, Endpoints]]:
    state = tmp_path / "state"
    with simulator_process(state, "--workers", "2", "--seed", "5", stderr=subprocess.PIPE) as (
        _,
        endpoints,
    ):
        yield state, endpoints


def counted(endpoints: Endpoints, provider: str, outcome: str) -> int:
    stats = control(endpoints, "GET", "/_sim/stats")
    n: int = stats["providers"].get(provider, {}).get(outcome, 0)
    return n


def worker_served(endpoints: Endpoints, listener: str) -> int:
    n: int = control(endpoints, "GET", "/_sim/stats")["workers"]["1"].get(listener, 0)
    return n


def spread(
    endpoints: Endpoints,
    listener: str,
    probe: Callable[[H2Client], None],
    outcome: tuple[str, str],
    total: int,
) -> list[H2Client]:
    """``total`` connections to ``listener``, at least one on each process."""
    return [c for c, _ in placed(endpoints, listener, probe, outcome, total)]


def placed(
    endpoints: Endpoints,
    listener: str,
    probe: Callable[[H2Client], None],
    outcome: tuple[str, str],
    total: int,
) -> list[tuple[H2Client, bool]]:
    """``total`` connections to ``listener``, at least one on each process, each with
    whether the worker holds it.

    Each new connection sends ``probe`` (a request counted under ``outcome`` by the
    process that reads it); once the count shows it, the worker's share of requests
    read tells which process holds the connection."""
    clients: list[tuple[H2Client, bool]] = []
    on_worker = on_primary = 0
    base = counted(endpoints, *outcome)
    for n in range(1, 41):
        served = worker_served(endpoints, listener)
        c = H2Client(endpoints[listener], endpoints["ca_file"])
        probe(c)
        deadline = time.monotonic() + 5
        while counted(endpoints, *outcome) < base + n and time.monotonic() < deadline:
            time.sleep(0.02)
        on = worker_served(endpoints, listener) > served
        on_worker += on
        on_primary += not on
        clients.append((c, on))
        if on_worker and on_primary and len(clients) >= total:
            return clients
    raise AssertionError(f"40 connections, worker {on_worker}, primary {on_primary}")


def fcm_access_token(state: Path, endpoints: Endpoints) -> str:
    sa = json.loads((state / "fcm" / "service-account.json").read_text())
    form = urllib.parse.urlencode(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": signed_assertion(sa),
        }
    ).encode()
    import ssl

    ctx = ssl.create_default_context(cafile=endpoints["ca_file"])
    with urllib.request.urlopen(endpoints["oauth_token_uri"], form, 10, context=ctx) as resp:
        token: str = json.loads(resp.read())["access_token"]
    return token


def test_fcm_device_quota_is_counted_once_across_workers(
    two: tuple[Path, Endpoints],
) -> None:
    state, endpoints = two
    device = control(endpoints, "POST", "/_sim/devices", {"provider": "fcm", "count": 1})[
        "devices"
    ][0]
    auth = [("authorization", f"Bearer {fcm_access_token(state, endpoints)}")]

    def probe(c: H2Client) -> None:  # malformed JSON: counted where it is read
        assert c.request(FCM_PATH, auth, b"{")[0] == 400

    clients = spread(endpoints, "fcm", probe, ("fcm", "INVALID_ARGUMENT"), 8)[:8]
    answers: list[tuple[int, str]] = []
    for i in range(300):
        status, _, body = clients[i % len(clients)].request(
            FCM_PATH, auth, fcm_body(device["token"])
        )
        detail = json.loads(body).get("error", {}).get("details", [{}])[0]
        answers.append((status, detail.get("errorCode", "")))
    assert answers.count((200, "")) == 240
    assert answers.count((429, "QUOTA_EXCEEDED")) == 60
    assert counted(endpoints, "fcm", "delivered") == 240
    inbox = control(endpoints, "GET", f"/_sim/devices/{device['id']}/inbox")["messages"]
    assert len(inbox) == 240


def test_tokens_killed_are_dead_on_both_processes(two: tuple[Path, Endpoints]) -> None:
    state, endpoints = two
    apns = control(endpoints, "POST", "/_sim/devices", {"provider": "apns", "count": 3})["devices"]
    fcm = control(endpoints, "POST", "/_sim/devices", {"provider": "fcm", "count": 1})["devices"]
    headers = [
        ("authorization", f"bearer {make_token(state)}"),
        ("apns-topic", "com.example.pushsim"),
    ]
    time.sleep(0.2)  # the new tokens reach the worker

    def probe(c: H2Client) -> None:  # a live token: delivered wherever it is read
        assert c.request(f"/3/device/{apns[0]['token']}", headers)[0] == 200

    clients = spread(endpoints, "apns", probe, ("apns", "delivered"), 4)
    control(endpoints, "DELETE", f"/_sim/devices/{apns[1]['id']}")  # uninstalled
    control(endpoints, "POST", f"/_sim/devices/{apns[2]['id']}/rotate")  # reinstalled
    control(endpoints, "DELETE", f"/_sim/devices/{fcm[0]['id']}")
    time.sleep(0.2)  # a sync round (50 ms) and then some
    for c in clients:
        for dev in apns[1:]:
            status, _, body = c.request(f"/3/device/{dev['token']}", headers)
            assert (status, json.loads(body)["reason"]) == (410, "Unregistered")
    auth = [("authorization", f"Bearer {fcm_access_token(state, endpoints)}")]
    for _ in range(8):
        c = H2Client(endpoints["fcm"], endpoints["ca_file"])
        status, _, body = c.request(FCM_PATH, auth, fcm_body(fcm[0]["token"]))
        assert status == 404 and b"UNREGISTERED" in body
        c.close()
    assert counted(endpoints, "apns", "Unregistered") == 2 * len(clients)
    rejected = control(endpoints, "GET", "/_sim/dead_tokens")["tokens"]
    assert {r["token"] for r in rejected} >= {apns[1]["token"], apns[2]["token"]}


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_webpush_on_both_processes_and_churn_reaches_the_worker(
    two: tuple[Path, Endpoints],
) -> None:
    state, endpoints = two
    vapid = json.loads((state / "webpush" / "vapid.json").read_text())
    subs = control(
        endpoints,
        "POST",
        "/_sim/devices",
        {"provider": "webpush", "count": 2, "application_server_key": vapid["public_key"]},
    )["devices"]
    claims = {"aud": endpoints["webpush"], "exp": int(time.time()) + 3600, "sub": vapid["subject"]}
    token = jwt.encode(claims, vapid["private_key"], algorithm="ES256")
    headers = [("authorization", f"vapid t={token}, k={vapid['public_key']}"), ("ttl", "60")]
    headers.append(("content-encoding", "aes128gcm"))

    def body(sub: dict[str, Any]) -> bytes:
        keys = sub["subscription"]["keys"]
        out: bytes = http_ece.encrypt(
            b"hello",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=_b64d(keys["p256dh"]),
            auth_secret=_b64d(keys["auth"]),
            version="aes128gcm",
        )
        return out

    def path(sub: dict[str, Any]) -> str:
        return urllib.parse.urlsplit(sub["subscription"]["endpoint"]).path

    time.sleep(0.2)

    def probe(c: H2Client) -> None:
        assert c.request(path(subs[0]), headers, body(subs[0]))[0] == 201

    clients = spread(endpoints, "webpush", probe, ("webpush", "delivered"), 4)
    inbox = control(endpoints, "GET", f"/_sim/devices/{subs[0]['id']}/inbox")["messages"]
    assert len(inbox) == len(clients) and inbox[0]["payload_text"] == "hello"
    # token churn (decided by the primary's fault plan) uninstalls the second subscription
    control(
        endpoints,
        "POST",
        "/_sim/faults",
        {
            "kind": "token_churn",
            "provider": "webpush",
            "token": subs[1]["token"],
            "action": "uninstall",
            "duration": "0.1s",
        },
    )
    time.sleep(0.4)
    for c in clients:
        assert c.request(path(subs[1]), headers, body(subs[1]))[0] == 410


def test_fault_plan_applies_on_both_processes_and_the_timeline_stays_whole(
    two: tuple[Path, Endpoints],
) -> None:
    state, endpoints = two
    apns = control(endpoints, "POST", "/_sim/devices", {"provider": "apns", "count": 1})["devices"]
    headers = [
        ("authorization", f"bearer {make_token(state)}"),
        ("apns-topic", "com.example.pushsim"),
    ]
    time.sleep(0.2)

    def probe(c: H2Client) -> None:
        assert c.request(f"/3/device/{apns[0]['token']}", headers)[0] == 200

    clients = spread(endpoints, "apns", probe, ("apns", "delivered"), 4)
    control(
        endpoints,
        "POST",
        "/_sim/faults",
        {"id": "down", "kind": "outage", "provider": "apns", "mode": "status", "retry_after": 7},
    )
    time.sleep(0.2)  # the plan reaches the worker
    for c in clients:
        status, hdrs, body = c.request(f"/3/device/{apns[0]['token']}", headers)
        assert (status, hdrs.get("retry-after"), json.loads(body)["reason"]) == (
            503,
            "7",
            "ServiceUnavailable",
        )
    time.sleep(0.2)  # the worker's counters reach the primary
    timeline = control(endpoints, "GET", "/_sim/timeline")
    totals = {(t["fault"], t["outcome"]): t["count"] for t in timeline["totals"]}
    assert totals[("down", "unavailable")] == len(clients)
    assert sum(b["count"] for b in timeline["buckets"] if b["fault"] == "down") == len(clients)
    assert timeline["sends_during_outage"]["apns"] == len(clients)
    control(endpoints, "DELETE", "/_sim/faults/down")
    time.sleep(0.2)
    for c in clients:
        assert c.request(f"/3/device/{apns[0]['token']}", headers)[0] == 200


def test_a_throttle_is_counted_once_across_processes(two: tuple[Path, Endpoints]) -> None:
    state, endpoints = two
    apns = control(endpoints, "POST", "/_sim/devices", {"provider": "apns", "count": 1})["devices"]
    headers = [
        ("authorization", f"bearer {make_token(state)}"),
        ("apns-topic", "com.example.pushsim"),
    ]
    time.sleep(0.2)

    def probe(c: H2Client) -> None:
        assert c.request(f"/3/device/{apns[0]['token']}", headers)[0] == 200

    clients = spread(endpoints, "apns", probe, ("apns", "delivered"), 4)
    throttle = {"kind": "throttle", "provider": "apns", "rate": 0.01, "burst": 5}
    control(endpoints, "POST", "/_sim/faults", {"id": "slow", **throttle})
    time.sleep(0.2)
    statuses = [
        clients[i % len(clients)].request(f"/3/device/{apns[0]['token']}", headers)[0]
        for i in range(20)
    ]
    assert statuses.count(200) == 5 and statuses.count(429) == 15


def test_a_retry_after_given_by_one_process_holds_on_the_other(
    two: tuple[Path, Endpoints],
) -> None:
    state, endpoints = two
    apns = control(endpoints, "POST", "/_sim/devices", {"provider": "apns", "count": 2})["devices"]
    headers = [
        ("authorization", f"bearer {make_token(state)}"),
        ("apns-topic", "com.example.pushsim"),
    ]
    time.sleep(0.2)

    def probe(c: H2Client) -> None:
        assert c.request(f"/3/device/{apns[0]['token']}", headers)[0] == 200

    conns = placed(endpoints, "apns", probe, ("apns", "delivered"), 2)
    on_worker = next(c for c, w in conns if w)
    on_primary = next(c for c, w in conns if not w)
    target = apns[1]["token"]
    outage = {"kind": "outage", "provider": "apns", "token": target, "retry_after": 30}
    control(endpoints, "POST", "/_sim/faults", {"id": "hold", **outage})
    time.sleep(0.2)
    for answering, retrying in ((on_worker, on_primary), (on_primary, on_worker)):
        assert answering.request(f"/3/device/{target}", headers)[1].get("retry-after") == "30"
        time.sleep(0.3)  # the hold reaches the other process; the retry is not in flight
        assert retrying.request(f"/3/device/{target}", headers)[0] == 503
    time.sleep(0.2)
    assert control(endpoints, "GET", "/_sim/timeline")["retry_after_violations"]["apns"] == 3
