"""curl against every provider, over HTTP/2 (ALPN h2) and HTTP/1.1, and h2c without TLS.

Nothing but the base URL and ``--cacert <state dir>/ca.pem`` differs from what one would
send to Apple, Google or a browser's push service:

- APNs: a provider token (ES256 JWT from the ``.p8``) gets 200 + apns-id; errors carry
  the reason.
- FCM: the OAuth2 JWT-bearer grant is form-encoded to ``token_uri`` (assertion signed
  here with pyjwt from the service-account file); the access token then sends through
  ``messages:send``; an uninstalled device is 404 UNREGISTERED.
- Web Push: the body is encrypted and the VAPID header signed with pywebpush's own
  primitives, then curl POSTs it to the subscription endpoint: 201 + Location, and 410
  once the subscription is gone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from py_vapid import Vapid02
from pywebpush import WebPusher

from simulator.testing.fcm import signed_assertion
from simulator.testing.handle import (
    SimulatorHandle,
    apns_credentials,
    apns_provider_token,
    running_simulator,
)

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not on PATH")

HTTP_VERSIONS = {"h2": ("--http2", "2"), "http/1.1": ("--http1.1", "1.1")}
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class CurlResponse:
    status: int
    http_version: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def curl(
    url: str,
    *args: str,
    headers: tuple[str, ...] = (),
    cacert: str | None = None,
    tmp: Path,
) -> CurlResponse:
    """Run curl once; the response's status, HTTP version, headers and body."""
    head_file, body_file = tmp / "curl.head", tmp / "curl.body"
    cmd = ["curl", "-sS", "-D", str(head_file), "-o", str(body_file)]
    cmd += ["-w", "%{http_code} %{http_version}"]
    if cacert is not None:
        cmd += ["--cacert", cacert]
    for h in headers:
        cmd += ["-H", h]
    cmd += [*args, url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    status, version = proc.stdout.split()
    parsed: dict[str, str] = {}
    for line in head_file.read_text().splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            parsed[name.strip().lower()] = value.strip()
    return CurlResponse(int(status), version, parsed, body_file.read_bytes())


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("curl") / "state") as handle:
        yield handle


@pytest.fixture(params=list(HTTP_VERSIONS))
def http(request: pytest.FixtureRequest) -> tuple[str, str]:
    flag, version = HTTP_VERSIONS[request.param]
    return flag, version


def inbox(sim: SimulatorHandle, dev: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")[
        "messages"
    ]
    return messages


# -- APNs -----------------------------------------------------------------------------------


def apns_token(state_dir: Path) -> tuple[str, dict[str, str]]:
    meta, _ = apns_credentials(state_dir)
    return apns_provider_token(state_dir), meta


def test_apns(sim: SimulatorHandle, http: tuple[str, str], tmp_path: Path) -> None:
    flag, version = http
    token, meta = apns_token(sim.state_dir)
    live, dead = sim.mint("apns", 2)
    sim.control("DELETE", f"/_sim/devices/{dead['id']}")
    ca = sim.endpoints["ca_file"]
    apns = sim.endpoints["apns"]
    auth = (f"authorization: bearer {token}", f"apns-topic: {meta['bundle_id']}")
    payload = '{"aps":{"alert":{"title":"Hello","body":"from curl"}},"correlation_id":"curl-1"}'

    r = curl(
        f"{apns}/3/device/{live['token']}",
        flag,
        "--data-binary",
        payload,
        headers=(*auth, "apns-push-type: alert", "apns-priority: 10"),
        cacert=ca,
        tmp=tmp_path,
    )
    assert (r.status, r.http_version, r.body) == (200, version, b"")
    assert len(r.headers["apns-id"]) == 36
    [msg] = inbox(sim, live)
    assert msg["payload"]["aps"]["alert"]["body"] == "from curl"
    assert msg["correlation_id"] == "curl-1"

    r = curl(
        f"{apns}/3/device/{live['token']}",
        flag,
        "--data-binary",
        payload,
        cacert=ca,
        tmp=tmp_path,
    )
    assert (r.status, r.json()) == (403, {"reason": "MissingProviderToken"})

    r = curl(
        f"{apns}/3/device/{dead['token']}",
        flag,
        "--data-binary",
        payload,
        headers=auth,
        cacert=ca,
        tmp=tmp_path,
    )
    assert r.status == 410 and r.json()["reason"] == "Unregistered"
    assert r.json()["timestamp"] > 1_600_000_000_000

    r = curl(
        f"{apns}/3/device/{'0' * 64}",
        flag,
        "--data-binary",
        payload,
        headers=auth,
        cacert=ca,
        tmp=tmp_path,
    )
    assert (r.status, r.json()) == (400, {"reason": "BadDeviceToken"})
    assert len(inbox(sim, live)) == 1


def test_apns_tls_is_refused_without_the_ca(sim: SimulatorHandle, tmp_path: Path) -> None:
    """The simulator's certificate chains to its own CA, not to the system's trust store."""
    proc = subprocess.run(
        ["curl", "-sS", "--http2", "-X", "POST", sim.endpoints["apns"] + "/3/device/" + "0" * 64],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 60, proc.stderr  # CURLE_PEER_FAILED_VERIFICATION


# -- FCM ------------------------------------------------------------------------------------


def fcm_access_token(
    sim: SimulatorHandle, flag: str, tmp: Path
) -> tuple[CurlResponse, dict[str, Any]]:
    """The JWT-bearer grant as Google's client libraries send it, through curl."""
    sa: dict[str, Any] = json.loads((sim.state_dir / "fcm" / "service-account.json").read_text())
    assertion = signed_assertion(sa)
    r = curl(
        sa["token_uri"],
        flag,
        "--data-urlencode",
        f"grant_type={JWT_BEARER}",
        "--data-urlencode",
        f"assertion={assertion}",
        cacert=sim.endpoints["ca_file"],
        tmp=tmp,
    )
    return r, sa


def test_fcm(sim: SimulatorHandle, http: tuple[str, str], tmp_path: Path) -> None:
    flag, version = http
    ca = sim.endpoints["ca_file"]
    r, sa = fcm_access_token(sim, flag, tmp_path)
    assert (r.status, r.http_version) == (200, version), r.body
    grant = r.json()
    assert grant["token_type"] == "Bearer" and grant["expires_in"] == 3599
    assert sa["token_uri"] == sim.endpoints["oauth_token_uri"]

    live, dead = sim.mint("fcm", 2)
    sim.control("DELETE", f"/_sim/devices/{dead['id']}")
    send_url = f"{sim.endpoints['fcm']}/v1/projects/{sa['project_id']}/messages:send"
    auth = (f"authorization: Bearer {grant['access_token']}", "content-type: application/json")

    def message(token: str) -> str:
        return json.dumps(
            {
                "message": {
                    "token": token,
                    "notification": {"title": "Hello", "body": "from curl"},
                    "data": {"correlation_id": "curl-fcm"},
                }
            }
        )

    r = curl(
        send_url,
        flag,
        "--data-binary",
        message(live["token"]),
        headers=auth,
        cacert=ca,
        tmp=tmp_path,
    )
    assert (r.status, r.http_version) == (200, version), r.body
    assert r.json()["name"].startswith(f"projects/{sa['project_id']}/messages/")
    [msg] = inbox(sim, live)
    assert msg["correlation_id"] == "curl-fcm"

    r = curl(
        send_url,
        flag,
        "--data-binary",
        message(dead["token"]),
        headers=auth,
        cacert=ca,
        tmp=tmp_path,
    )
    error = r.json()["error"]
    assert (r.status, error["code"], error["status"]) == (404, 404, "NOT_FOUND")
    [detail] = [
        d
        for d in error["details"]
        if d["@type"] == "type.googleapis.com/google.firebase.fcm.v1.FcmError"
    ]
    assert detail["errorCode"] == "UNREGISTERED"

    r = curl(
        send_url,
        flag,
        "--data-binary",
        message(live["token"]),
        headers=("authorization: Bearer not-a-token", "content-type: application/json"),
        cacert=ca,
        tmp=tmp_path,
    )
    assert (r.status, r.json()["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert len(inbox(sim, live)) == 1


def test_fcm_token_endpoint_rejects_a_bad_grant(sim: SimulatorHandle, tmp_path: Path) -> None:
    r = curl(
        sim.endpoints["oauth_token_uri"],
        "--data-urlencode",
        f"grant_type={JWT_BEARER}",
        "--data-urlencode",
        "assertion=not.a.jwt",
        cacert=sim.endpoints["ca_file"],
        tmp=tmp_path,
    )
    assert r.status == 400 and r.json()["error"] == "invalid_grant"


# -- Web Push -------------------------------------------------------------------------------


def webpush_request(
    sim: SimulatorHandle, subscription: dict[str, Any], payload: bytes, tmp: Path
) -> tuple[Path, tuple[str, ...]]:
    """Encrypt (RFC 8291 aes128gcm) and sign (RFC 8292 VAPID) with pywebpush's primitives."""
    vapid = json.loads((sim.state_dir / "webpush" / "vapid.json").read_text())
    encoded = WebPusher(subscription).encode(payload, content_encoding="aes128gcm")
    body = tmp / "webpush.body"
    body.write_bytes(encoded["body"])
    signed = Vapid02.from_pem(vapid["private_key"].encode()).sign(
        {
            "aud": sim.endpoints["webpush"],
            "sub": vapid["subject"],
            "exp": int(time.time()) + 3600,
        }
    )
    headers = (
        f"authorization: {signed['Authorization']}",
        "content-encoding: aes128gcm",
        "content-type: application/octet-stream",
        "ttl: 600",
        "urgency: high",
    )
    return body, headers


def test_webpush(sim: SimulatorHandle, http: tuple[str, str], tmp_path: Path) -> None:
    flag, version = http
    ca = sim.endpoints["ca_file"]
    vapid = json.loads((sim.state_dir / "webpush" / "vapid.json").read_text())
    dev = sim.mint("webpush", application_server_key=vapid["public_key"])[0]
    sub = dev["subscription"]
    payload = {"title": "Hello", "correlation_id": "curl-wp"}
    body, headers = webpush_request(sim, sub, json.dumps(payload).encode(), tmp_path)

    r = curl(
        sub["endpoint"], flag, "--data-binary", f"@{body}", headers=headers, cacert=ca, tmp=tmp_path
    )
    assert (r.status, r.http_version) == (201, version), r.body
    assert r.headers["location"].startswith(sim.endpoints["webpush"] + "/")
    [msg] = inbox(sim, dev)
    assert msg["payload"] == payload and msg["urgency"] == "high" and msg["ttl"] == 600

    r = curl(
        sub["endpoint"],
        flag,
        "--data-binary",
        f"@{body}",
        headers=headers[1:],
        cacert=ca,
        tmp=tmp_path,
    )
    assert r.status == 401  # no VAPID authorization

    sim.control("DELETE", f"/_sim/devices/{dev['id']}")
    r = curl(
        sub["endpoint"], flag, "--data-binary", f"@{body}", headers=headers, cacert=ca, tmp=tmp_path
    )
    assert r.status == 410
    assert len(inbox(sim, dev)) == 1


# -- h2c (pushsim simulator --no-tls) -------------------------------------------------------


def test_h2c_prior_knowledge_for_every_provider(tmp_path: Path) -> None:
    with running_simulator(tmp_path / "state", tls=False) as plain:
        h2c = "--http2-prior-knowledge"
        token, meta = apns_token(plain.state_dir)
        dev = plain.mint("apns")[0]
        r = curl(
            f"{plain.endpoints['apns']}/3/device/{dev['token']}",
            h2c,
            "--data-binary",
            '{"aps":{"alert":"h2c"}}',
            headers=(f"authorization: bearer {token}", f"apns-topic: {meta['bundle_id']}"),
            tmp=tmp_path,
        )
        assert (r.status, r.http_version) == (200, "2") and "apns-id" in r.headers

        r, sa = fcm_access_token(plain, h2c, tmp_path)
        assert (r.status, r.http_version) == (200, "2"), r.body
        fcm_dev = plain.mint("fcm")[0]
        r = curl(
            f"{plain.endpoints['fcm']}/v1/projects/{sa['project_id']}/messages:send",
            h2c,
            "--data-binary",
            json.dumps({"message": {"token": fcm_dev["token"], "data": {"k": "v"}}}),
            headers=(f"authorization: Bearer {r.json()['access_token']}",),
            tmp=tmp_path,
        )
        assert (r.status, r.http_version) == (200, "2"), r.body

        vapid = json.loads((plain.state_dir / "webpush" / "vapid.json").read_text())
        wp = plain.mint("webpush", application_server_key=vapid["public_key"])[0]
        body, headers = webpush_request(plain, wp["subscription"], b"plain h2c", tmp_path)
        r = curl(
            wp["subscription"]["endpoint"],
            h2c,
            "--data-binary",
            f"@{body}",
            headers=headers,
            tmp=tmp_path,
        )
        assert (r.status, r.http_version) == (201, "2"), r.body
        assert inbox(plain, wp)[0]["payload_text"] == "plain h2c"
