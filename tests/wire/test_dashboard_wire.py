"""The dashboard over real loopback sockets: its endpoints, its refusals, its API on the
simulator's own operations, and the event stream over HTTP/2 (httpx) and HTTP/1.1."""

from __future__ import annotations

import json
import socket
import ssl
import time
from urllib.parse import urlsplit

import httpx
import pytest
from dashboard_helpers import ApnsLoad, DashClient

from simulator.testing.handle import SimulatorHandle


def test_endpoints_name_the_dashboard(dash_sim: SimulatorHandle) -> None:
    ep = dash_sim.endpoints
    assert ep["dashboard"].startswith("https://127.0.0.1:") and not ep["dashboard"].endswith("/")
    assert len(ep["dashboard_token"]) >= 24
    on_disk = json.loads((dash_sim.state_dir / "endpoints.json").read_text())
    assert on_disk["dashboard"] == ep["dashboard"]


def test_page_and_static_files_are_served_from_the_package(dash: DashClient) -> None:
    page = dash.call("GET", "/", token=False)
    assert page.status_code == 200 and page.http_version == "HTTP/2"
    assert "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (("app.js", "javascript"), ("charts.js", "javascript"), ("style.css", "css")):
        r = dash.call("GET", f"/static/{name}", token=False)
        assert r.status_code == 200 and kind in r.headers["content-type"], name
    assert dash.call("GET", "/static/../asgi.py", token=False).status_code == 404


def _raw_http11(url: str, ca_file: str, host_header: str, path: str = "/") -> bytes:
    parts = urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.set_alpn_protocols(["http/1.1"])
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=parts.hostname) as s:
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    return data


def test_a_foreign_host_header_is_refused(dash_sim: SimulatorHandle, dash: DashClient) -> None:
    port = urlsplit(dash.url).port
    # HTTP/1.1: a page on another name that resolves here (DNS rebinding)
    reply = _raw_http11(dash.url, dash_sim.endpoints["ca_file"], f"rebind.example:{port}")
    assert reply.startswith(b"HTTP/1.1 403") and b"is not this dashboard" in reply
    ok = _raw_http11(dash.url, dash_sim.endpoints["ca_file"], f"127.0.0.1:{port}")
    assert ok.startswith(b"HTTP/1.1 200")
    # HTTP/2: the :authority
    r = dash.call("GET", "/api/vocabulary", host=f"rebind.example:{port}")
    assert r.status_code == 403 and r.http_version == "HTTP/2"


def test_calls_without_the_token_are_refused(dash_sim: SimulatorHandle, dash: DashClient) -> None:
    body = {"preset": "outage", "provider": "apns"}
    for method, path in (
        ("POST", "/api/faults"),
        ("DELETE", "/api/faults"),
        ("GET", "/api/events"),
    ):
        r = dash.call(method, path, body if method == "POST" else None, token=False)
        assert r.status_code == 403 and "token" in r.json()["error"], (method, path)
    wrong = dash.call("POST", "/api/faults", body, token=False, **{"x-pushsim-token": "guess"})
    assert wrong.status_code == 403
    as_form = dash.call("POST", "/api/faults", body, **{"content-type": "text/plain"})
    assert as_form.status_code == 415
    assert dash_sim.control("GET", "/_sim/faults")["faults"] == []  # nothing was applied


def test_faults_through_the_dashboard_are_the_simulators_own(
    dash_sim: SimulatorHandle, dash: DashClient
) -> None:
    r = dash.call("POST", "/api/faults", {"preset": "outage", "provider": "apns", "duration": 10})
    assert r.status_code == 201
    (fault,) = r.json()["faults"]
    plan = dash_sim.control("GET", "/_sim/faults")["faults"]
    assert [(f["id"], f["kind"], f["provider"], f["state"]) for f in plan] == [
        (fault["id"], "outage", "apns", "active")
    ]
    form = {"kind": "latency", "provider": "fcm", "distribution": "fixed", "delay": "50ms"}
    assert dash.call("POST", "/api/faults", form).status_code == 201
    bad = dash.call("POST", "/api/faults", {"kind": "throttle", "provider": "fcm"})
    assert bad.status_code == 400 and bad.json()["field"] == "rate"
    assert dash.call("DELETE", f"/api/faults/{fault['id']}").json() == {"removed": [fault["id"]]}
    assert dash.call("DELETE", "/api/faults/nope").status_code == 404
    assert len(dash.call("DELETE", "/api/faults").json()["removed"]) == 1
    assert dash_sim.control("GET", "/_sim/faults")["faults"] == []


def test_devices_find_inbox_offline_rotate_uninstall(
    dash_sim: SimulatorHandle, dash: DashClient
) -> None:
    (dev,) = dash_sim.mint("apns")
    ApnsLoad(dash_sim, tokens=[dev["token"]]).send(2)
    found = dash.call("GET", f"/api/devices/find?token={dev['token']}").json()
    assert found["id"] == dev["id"] and found["state"] == "valid" and found["inbox_total"] == 2
    assert found["inbox"][0]["payload"]["aps"]["alert"].startswith("hello")
    offline = dash.call("POST", f"/api/devices/{dev['id']}/online", {"online": False}).json()
    assert offline["online"] is False
    assert dash_sim.control("GET", f"/_sim/devices/{dev['id']}")["online"] is False
    rotated = dash.call("POST", f"/api/devices/{dev['id']}/rotate", {}).json()
    assert rotated["token"] != dev["token"] and rotated["generation"] == 1
    old = dash.call("GET", f"/api/devices/find?token={dev['token']}").json()
    assert old["state"] == "dead (rotated)"
    gone = dash.call("DELETE", f"/api/devices/{dev['id']}").json()
    assert gone["installed"] is False
    assert dash.call("GET", "/api/devices/find?token=0000").status_code == 404


def test_webpush_inbox_is_shown_decrypted(
    dash_sim: SimulatorHandle, dash: DashClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from py_vapid import Vapid02
    from pywebpush import webpush

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", dash_sim.endpoints["ca_file"])
    vapid = json.loads((dash_sim.state_dir / "webpush" / "vapid.json").read_text())
    (dev,) = dash_sim.mint("webpush", application_server_key=vapid["public_key"])
    webpush(
        dev["subscription"],
        json.dumps({"title": "decrypted here", "correlation_id": "c-1"}),
        vapid_private_key=Vapid02.from_pem(vapid["private_key"].encode()),
        vapid_claims={"sub": "mailto:ops@example.com"},
        ttl=60,
    )
    found = dash.call("GET", f"/api/devices/find?token={dev['subscription']['endpoint']}").json()
    assert found["id"] == dev["id"]
    assert found["inbox"][0]["payload"] == {"title": "decrypted here", "correlation_id": "c-1"}


def test_the_event_stream_carries_counters_over_http2(
    dash_sim: SimulatorHandle, dash: DashClient
) -> None:
    ApnsLoad(dash_sim, devices=3).send(30)
    time.sleep(1.2)  # a tick
    (first, snapshot), (second, update) = dash.events(2)
    assert (first, second) == ("snapshot", "update")
    assert snapshot["totals"]["apns"]["200"] == 30
    assert {"series", "faults", "windows", "feed", "dead", "stats"} <= set(snapshot)
    assert "point" in update and "now" in update


def test_the_event_stream_over_http11(dash_sim: SimulatorHandle, dash: DashClient) -> None:
    with httpx.Client(
        http1=True,
        http2=False,
        verify=ssl.create_default_context(cafile=dash_sim.endpoints["ca_file"]),
    ) as c:
        url = f"{dash.url}/api/events?token={dash.token}"
        with c.stream("GET", url, timeout=10) as r:
            assert r.http_version == "HTTP/1.1" and r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    assert "series" in json.loads(line[6:])
                    break


def test_run_progress_posted_to_the_control_api_reaches_the_page(
    dash_sim: SimulatorHandle, dash: DashClient
) -> None:
    doc = {
        "scenario": "smoke",
        "phase": "load",
        "elapsed_s": 5,
        "duration_s": 20,
        "sent": 100,
        "objectives": [{"name": "min_throughput_per_s", "op": ">=", "bound": 5, "value": 20}],
    }
    kept = dash_sim.control("POST", "/_sim/run/progress", doc)
    assert kept["objectives"][0]["ok"] is True
    assert dash_sim.control("GET", "/_sim/run/progress")["scenario"] == "smoke"
    time.sleep(1.2)
    (_, snapshot), *_ = dash.events(1)
    assert snapshot["progress"]["scenario"] == "smoke"
