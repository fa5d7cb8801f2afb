"""Each fault kind executed on the wire: real clients over real sockets, and what they saw."""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from h2clients import FCM_PATH, addr, fcm_body, h2_exchange

from simulator.faults.plan import unit
from simulator.testing.handle import SimulatorHandle, apns_provider_token

# -- clients ----------------------------------------------------------------------------


def http1(
    url: str, path: str, body: bytes = b"{}", *, timeout: float = 5.0
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 POST with urllib (status, headers, body); errors are answers too."""
    req = urllib.request.Request(
        url + path,
        data=body,
        method="POST",
        headers={"ttl": "60", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def control(sim: SimulatorHandle, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sim.endpoints["control"] + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def apply(sim: SimulatorHandle, fault: Any) -> list[dict[str, Any]]:
    status, body = control(sim, "POST", "/_sim/faults", fault)
    assert status == 201, body
    faults: list[dict[str, Any]] = body["faults"]
    return faults


def provider_token(sim: SimulatorHandle, iat: float | None = None) -> str:
    return apns_provider_token(sim.state_dir, iat)


@contextmanager
def apns_client(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=sim.endpoints["ca_file"])
    with httpx.Client(http2=True, verify=ctx, base_url=sim.endpoints["apns"], timeout=5) as client:
        yield client


def apns_send(client: httpx.Client, token: str, jwt_text: str) -> httpx.Response:
    return client.post(
        f"/3/device/{token}",
        content=b'{"aps":{"alert":"hi"}}',
        headers={
            "authorization": f"bearer {jwt_text}",
            "apns-topic": "com.example.pushsim",
            "apns-push-type": "alert",
        },
    )


def wait_until(pred: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


# -- outage ------------------------------------------------------------------------------


def test_outage_status_is_each_providers_own_503(sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    apply(
        sim,
        [
            {
                "id": "apns-down",
                "kind": "outage",
                "provider": "apns",
                "retry_after": 7,
                "duration": "1m",
            },
            {"kind": "outage", "provider": "fcm", "retry_after": "auto", "duration": "30s"},
            {"kind": "outage", "provider": "webpush", "duration": "30s"},
        ],
    )
    with apns_client(sim) as client:
        resp = apns_send(client, dev["token"], provider_token(sim))
        assert resp.http_version == "HTTP/2"
        assert resp.status_code == 503 and resp.json() == {"reason": "ServiceUnavailable"}
        assert resp.headers["retry-after"] == "7" and resp.headers["apns-id"]
        time.sleep(0.15)  # past the grace for requests already in flight
        resp = apns_send(client, dev["token"], provider_token(sim))  # 7 s early: a violation
        assert resp.status_code == 503
    fcm = httpx.post(
        sim.endpoints["fcm"] + FCM_PATH,
        content=fcm_body("x"),
        verify=ssl.create_default_context(cafile=sim.endpoints["ca_file"]),
    )
    assert fcm.status_code == 503
    err = fcm.json()["error"]
    assert err["status"] == "UNAVAILABLE" and err["details"][0]["errorCode"] == "UNAVAILABLE"
    assert 28 <= int(fcm.headers["retry-after"]) <= 30
    wp = httpx.post(
        sim.endpoints["webpush"] + "/wp/abc",
        content=b"x",
        headers={"ttl": "60"},
        verify=ssl.create_default_context(cafile=sim.endpoints["ca_file"]),
    )
    assert (
        wp.status_code == 503
        and "retry-after" not in wp.headers
        and wp.headers["content-type"].startswith("text/plain")
    )

    stats = sim.control("GET", "/_sim/stats")
    assert stats["sends_during_outage"] == {"apns": 2, "fcm": 1, "webpush": 1}
    assert stats["retry_after_violations"]["apns"] == 1
    assert stats["faults_injected"]["apns"]["outage"]["unavailable"] == 2
    with urllib.request.urlopen(sim.endpoints["control"] + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert (
        'pushsim_faults_injected_total{provider="apns",fault="outage",outcome="unavailable"} 2'
        in metrics
    )
    timeline = sim.control("GET", "/_sim/timeline")
    window = next(w for w in timeline["windows"] if w["fault"] == "apns-down")
    assert window["open"] and window["count"] == 2 and window["end"] > window["start"]
    assert any(b["fault"] == "apns-down" and b["count"] == 2 for b in timeline["buckets"])

    # Cleared: the provider answers for itself again.
    assert control(sim, "DELETE", "/_sim/faults/apns-down")[0] == 200
    with apns_client(sim) as client:
        assert apns_send(client, dev["token"], provider_token(sim)).status_code == 200
    events = sim.control("GET", "/_sim/timeline")["events"]
    assert [e["event"] for e in events if e["fault"] == "apns-down"] == ["opened", "closed"]


def test_outage_refused_closes_the_listener_for_the_window(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    host, port = addr(sim.endpoints["webpush"])
    before = socket.create_connection((host, port), timeout=2)
    apply(sim, {"kind": "outage", "provider": "webpush", "mode": "refused", "duration": "1s"})

    def refused() -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False

    assert wait_until(refused, 2.0)
    before.settimeout(2)
    try:
        assert before.recv(100) == b""  # the live connection was dropped too
    except ConnectionResetError:
        pass
    before.close()
    # the window closes and the listener accepts again, on the same port
    assert wait_until(lambda: not refused(), 5.0)
    assert http1(sim.endpoints["webpush"], "/wp/nothing")[0] != 503
    windows = sim.control("GET", "/_sim/timeline")["windows"]
    assert windows[0]["kind"] == "outage" and not windows[0]["open"]


def test_outage_reset_is_rst_stream_on_h2_and_an_abort_on_http1(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    apply(sim, {"kind": "outage", "provider": "webpush", "mode": "reset", "after": "50ms"})
    out = h2_exchange(sim.endpoints["webpush"], [("/wp/a", b"x"), ("/wp/b", b"y")])
    assert [s.reset for s in out.streams.values()] == [2, 2]  # INTERNAL_ERROR
    assert all(s.status is None for s in out.streams.values())
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        urllib.request.urlopen(
            urllib.request.Request(
                sim.endpoints["webpush"] + "/wp/a", data=b"x", headers={"ttl": "5"}
            ),
            timeout=3,
        )
    # tcp_reset: the whole connection goes, on h2 too
    control(sim, "DELETE", "/_sim/faults")
    apply(sim, {"kind": "outage", "provider": "webpush", "mode": "tcp_reset"})
    out = h2_exchange(sim.endpoints["webpush"], [("/wp/a", b"x")])
    assert out.connection_lost and out.streams[1].status is None
    stats = sim.control("GET", "/_sim/stats")["faults_injected"]["webpush"]["outage"]
    assert stats["reset_stream"] == 3 and stats["tcp_reset"] == 1


def test_outage_goaway_loses_the_streams_in_flight(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    apply(sim, {"kind": "outage", "provider": "fcm", "mode": "goaway", "token": "doomed"})
    out = h2_exchange(
        sim.endpoints["fcm"],
        [
            (FCM_PATH, fcm_body("fine")),
            (FCM_PATH, fcm_body("doomed")),
            (FCM_PATH, fcm_body("also-fine")),
        ],
    )
    assert out.goaway_last_stream == 1
    assert out.streams[1].status is not None  # answered before the GOAWAY (by the FCM core)
    assert out.streams[3].status is None and out.streams[5].status is None  # lost
    assert sim.control("GET", "/_sim/stats")["faults_injected"]["fcm"]["outage"] == {"goaway": 1}


def test_outage_hang_accepts_and_never_answers(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    apply(sim, {"kind": "outage", "provider": "webpush", "mode": "hang", "token": "stuck"})
    out = h2_exchange(
        sim.endpoints["webpush"], [("/wp/stuck", b"x"), ("/wp/other", b"y")], wait=1.0, ping=True
    )
    assert (
        out.streams[1].status is None and out.streams[1].reset is None and not out.connection_lost
    )
    assert (
        out.streams[3].status is not None
    )  # the other subscription is answered on the same connection
    assert out.ping_acked  # the connection is alive; only the stream hangs
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        http1(sim.endpoints["webpush"], "/wp/stuck", timeout=0.5)


# -- throttle ----------------------------------------------------------------------------


def test_throttle_answers_429_with_an_honest_retry_after(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    apply(sim, {"kind": "throttle", "provider": "fcm", "scope": "project", "rate": 1, "burst": 2})
    url = sim.endpoints["fcm"]
    codes = [http1(url, FCM_PATH, fcm_body("t"))[0] for _ in range(2)]
    assert 429 not in codes
    status, headers, body = http1(url, FCM_PATH, fcm_body("t"))
    assert status == 429
    err = json.loads(body)["error"]
    assert (
        err["status"] == "RESOURCE_EXHAUSTED" and err["details"][0]["errorCode"] == "QUOTA_EXCEEDED"
    )
    wait = int(headers["retry-after"])
    assert 1 <= wait <= 2
    time.sleep(wait + 0.05)  # a request that waits that long gets in
    assert http1(url, FCM_PATH, fcm_body("t"))[0] != 429
    # another project has its own bucket
    assert http1(url, "/v1/projects/other/messages:send", fcm_body("t"))[0] != 429
    stats = sim.control("GET", "/_sim/stats")
    assert stats["retry_after_violations"]["fcm"] == 0 and stats["retry_after_honoured"]["fcm"] >= 1


def test_throttle_per_device_token_on_apns_and_early_retries_are_counted(
    sim: SimulatorHandle,
) -> None:
    a, b = sim.mint("apns", 2)
    apply(sim, {"kind": "throttle", "provider": "apns", "scope": "device", "rate": 0.2, "burst": 1})
    jwt_text = provider_token(sim)
    with apns_client(sim) as client:
        assert apns_send(client, a["token"], jwt_text).status_code == 200
        resp = apns_send(client, a["token"], jwt_text)
        assert resp.status_code == 429 and resp.json() == {"reason": "TooManyRequests"}
        assert 1 <= int(resp.headers["retry-after"]) <= 5
        assert apns_send(client, b["token"], jwt_text).status_code == 200  # its own bucket
        time.sleep(0.15)  # past the grace for requests already in flight
        assert apns_send(client, a["token"], jwt_text).status_code == 429  # came back too early
    assert sim.control("GET", "/_sim/stats")["retry_after_violations"]["apns"] == 1


# -- latency and errors -----------------------------------------------------------------


def test_latency_delays_the_answer(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    apply(
        sim,
        {
            "kind": "latency",
            "provider": "webpush",
            "distribution": "uniform",
            "min": "300ms",
            "max": "400ms",
        },
    )
    started = time.monotonic()
    status, _h, _b = http1(sim.endpoints["webpush"], "/wp/nothing")
    assert time.monotonic() - started >= 0.28
    assert status != 503 and status != 500
    started = time.monotonic()
    out = h2_exchange(sim.endpoints["webpush"], [("/wp/x", b"x"), ("/wp/y", b"y")], wait=5)
    assert time.monotonic() - started >= 0.28 and all(
        s.status is not None for s in out.streams.values()
    )
    assert (
        sim.control("GET", "/_sim/stats")["faults_injected"]["webpush"]["latency"]["delayed"] == 3
    )


def test_errors_share_matches_the_seeded_plan(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    apply(sim, {"id": "flaky", "kind": "errors", "provider": "webpush", "probability": 0.5})
    seen = {}
    for i in range(30):
        status, _h, body = http1(sim.endpoints["webpush"], f"/wp/sub{i}")
        seen[i] = status
        if status == 500:
            assert body == b"Internal Server Error"
    expected = {i for i in range(30) if unit(sim.sim.faults.seed, "flaky", f"sub{i}", 0) < 0.5}
    assert {i for i, s in seen.items() if s == 500} == expected and 0 < len(expected) < 30
    apply(sim, {"kind": "errors", "provider": "fcm", "probability": 1})
    status, _h, body = http1(sim.endpoints["fcm"], FCM_PATH, fcm_body("t"))
    assert status == 500 and json.loads(body)["error"]["details"][0]["errorCode"] == "INTERNAL"


def test_errors_on_apns_are_internal_server_error(sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    apply(sim, {"kind": "errors", "provider": "apns", "probability": 1, "token": dev["token"]})
    with apns_client(sim) as client:
        resp = apns_send(client, dev["token"], provider_token(sim))
        assert resp.status_code == 500 and resp.json() == {"reason": "InternalServerError"}


# -- token churn --------------------------------------------------------------------------


def test_token_churn_reinstalls_a_share_and_old_tokens_die(sim: SimulatorHandle) -> None:
    devs = sim.mint("apns", 30)
    seed = sim.sim.faults.seed
    expected = {d["id"] for d in devs if unit(seed, "share", d["id"]) < 0.4}
    apply(
        sim,
        {
            "kind": "token_churn",
            "provider": "apns",
            "share": 0.4,
            "action": "reinstall",
            "duration": "300ms",
        },
    )
    assert wait_until(
        lambda: len(sim.control("GET", "/_sim/feed?since=0")["events"]) >= len(expected), 5
    )
    time.sleep(0.1)
    events = sim.control("GET", "/_sim/feed?since=0")["events"]
    assert {e["device_id"] for e in events} == expected
    assert all(e["event"] == "rotated" and e["cause"] == "churn" for e in events)
    jwt_text = provider_token(sim)
    with apns_client(sim) as client:
        resp = apns_send(client, events[0]["old_token"], jwt_text)
        assert resp.status_code == 410 and resp.json()["reason"] == "Unregistered"
        assert apns_send(client, events[0]["new_token"], jwt_text).status_code == 200
    churn = sim.control("GET", "/_sim/timeline")["churn"]
    assert len(churn) == len(expected)


def test_token_churn_uninstall_at_a_rate(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    sim.mint("webpush", 10)
    apply(
        sim,
        {
            "kind": "token_churn",
            "provider": "webpush",
            "rate": 10,
            "action": "uninstall",
            "duration": "300ms",
        },
    )
    assert wait_until(lambda: len(sim.control("GET", "/_sim/feed?since=0")["events"]) >= 3, 5)
    time.sleep(0.2)
    events = sim.control("GET", "/_sim/feed?since=0")["events"]
    assert len(events) == 3 and all(
        e["event"] == "uninstalled" and e["new_token"] is None for e in events
    )
    status, _h, _b = http1(sim.endpoints["webpush"], f"/wp/{events[0]['old_token']}")
    assert status in (404, 410)


# -- auth ---------------------------------------------------------------------------------


def test_auth_relaxed_and_tightened_provider_token_expiry(sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    stale = provider_token(sim, iat=time.time() - 7200)
    with apns_client(sim) as client:
        resp = apns_send(client, dev["token"], stale)
        assert resp.status_code == 403 and resp.json()["reason"] == "ExpiredProviderToken"
    apply(sim, {"id": "lax", "kind": "auth", "provider": "apns", "mode": "relaxed"})
    with apns_client(sim) as client:
        assert apns_send(client, dev["token"], stale).status_code == 200
    control(sim, "DELETE", "/_sim/faults/lax")
    apply(sim, {"kind": "auth", "provider": "apns", "apns_token_max_age": "60s"})
    with apns_client(sim) as client:
        resp = apns_send(client, dev["token"], provider_token(sim, iat=time.time() - 120))
        assert resp.status_code == 403 and resp.json()["reason"] == "ExpiredProviderToken"
    assert sim.control("GET", "/_sim/faults")["auth"]["apns_token_max_age"] == 60.0


# -- the control API ----------------------------------------------------------------------


def test_bad_faults_get_400_and_disturb_nothing(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    apply(sim, {"id": "keep", "kind": "errors", "provider": "webpush", "probability": 1})
    status, body = control(
        sim, "POST", "/_sim/faults", {"kind": "outage", "provider": "apns", "duration": "soon"}
    )
    assert status == 400 and body["field"] == "duration" and "duration" in body["error"]
    status, body = control(
        sim,
        "POST",
        "/_sim/faults",
        [
            {"kind": "outage", "provider": "apns"},
            {"kind": "throttle", "provider": "fcm", "rate": -1},
        ],
    )
    assert status == 400 and body["field"] == "faults[1].rate"
    status, body = control(
        sim, "POST", "/_sim/faults", {"id": "keep", "kind": "outage", "provider": "fcm"}
    )
    assert status == 400 and "keep" in body["error"]
    assert control(sim, "POST", "/_sim/faults", None)[0] == 400
    req = urllib.request.Request(
        sim.endpoints["control"] + "/_sim/faults",
        data=b"{not json",
        method="POST",
        headers={"content-type": "application/json"},  # a write says JSON (control_guard)
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 400
    listed = sim.control("GET", "/_sim/faults")["faults"]
    assert [f["id"] for f in listed] == ["keep"] and listed[0]["state"] == "active"
    assert http1(sim.endpoints["webpush"], "/wp/x")[0] == 500  # still in force
    assert control(sim, "DELETE", "/_sim/faults/nope")[0] == 404
    assert control(sim, "DELETE", "/_sim/faults")[1] == {"removed": ["keep"]}
    assert http1(sim.endpoints["webpush"], "/wp/x")[0] != 500


def test_pending_window_opens_later(sim_plain: SimulatorHandle) -> None:
    sim = sim_plain
    (f,) = apply(
        sim, {"kind": "outage", "provider": "webpush", "start": "1500ms", "duration": "800ms"}
    )
    assert f["state"] == "pending"
    # generous margins: a loaded CI machine may stall a few hundred ms between calls
    assert http1(sim.endpoints["webpush"], "/wp/x")[0] != 503
    assert wait_until(lambda: http1(sim.endpoints["webpush"], "/wp/x")[0] == 503, 6)
    assert wait_until(lambda: http1(sim.endpoints["webpush"], "/wp/x")[0] != 503, 6)

    def events() -> list[str]:
        return [e["event"] for e in sim.control("GET", "/_sim/timeline")["events"]]

    # the scheduler records the window's edges on its tick (20 ms), just after the gate
    assert wait_until(lambda: len(events()) >= 2, 3)
    assert events() == ["opened", "closed"]


def test_scenario_file_is_applied_at_start(tmp_path: Path) -> None:
    from simulator.testing.handle import running_simulator

    plan = tmp_path / "plan.yaml"
    plan.write_text("name: x\nfaults:\n  - kind: outage\n    provider: webpush\n    duration: 1m\n")
    with running_simulator(tmp_path / "state", tls=False, scenario=plan) as sim:
        assert http1(sim.endpoints["webpush"], "/wp/x")[0] == 503
        assert sim.control("GET", "/_sim/faults")["faults"][0]["state"] == "active"
