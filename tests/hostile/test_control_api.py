"""The control API answers only its own loopback name and port, only its dashboard's
Origin, and only JSON writes: a web page in the same browser cannot drive it, and a
rebinding name cannot read it."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest
from hostile_peers import Target

pytestmark = pytest.mark.timeout(60)


def call(
    target: Target, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, bytes]:
    parts = urlsplit(target.endpoints["control"])
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def own_host(target: Target) -> str:
    return urlsplit(target.endpoints["control"]).netloc


MINT = json.dumps({"provider": "apns", "count": 1}).encode()


def test_a_rebinding_host_is_refused(target: Target) -> None:
    port = urlsplit(target.endpoints["control"]).port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", ""):
        status, body = call(target, "GET", "/_sim/devices", {"host": host})
        print(f"\n[hostile] control GET with Host {host!r}: {status}")
        assert status == 403, (host, status, body)
    for host in (own_host(target), f"localhost:{port}"):
        status, _ = call(target, "GET", "/_sim/stats", {"host": host})
        assert status == 200, host


def test_a_cross_site_origin_is_refused(target: Target) -> None:
    host = own_host(target)
    for origin in ("http://evil.example", "null", f"http://{host}.evil.example"):
        status, body = call(
            target,
            "POST",
            "/_sim/devices",
            {"host": host, "origin": origin, "content-type": "application/json"},
            MINT,
        )
        print(f"\n[hostile] control POST with Origin {origin!r}: {status}")
        assert status == 403, (origin, status, body)
    status, _ = call(
        target,
        "POST",
        "/_sim/devices",
        {"host": host, "origin": f"http://{host}", "content-type": "application/json"},
        MINT,
    )
    assert status == 201  # the API's own origin (and no Origin at all, as curl sends) is fine


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_writes_need_a_json_content_type(target: Target, ctype: str | None) -> None:
    headers = {"host": own_host(target)}
    if ctype is not None:
        headers["content-type"] = ctype
    status, body = call(target, "POST", "/_sim/devices", headers, MINT)
    print(f"\n[hostile] control POST as {ctype}: {status}")
    assert status == 415, (ctype, status, body)
    status, _ = call(target, "POST", "/_sim/apns/keys", headers, b"{}")
    assert status == 415  # the answer that would carry a new .p8
    headers["content-type"] = "application/json; charset=utf-8"
    status, _ = call(target, "POST", "/_sim/devices", headers, MINT)
    assert status == 201
