"""Malformed requests to each provider endpoint over real HTTP/2 (TLS): every one gets the
provider's own error status and body, never a 500 from an exception or a dropped
connection, and a well-formed request on the same client still succeeds afterwards."""

from __future__ import annotations

import base64
import json
import ssl
import struct
import time
from collections.abc import Iterator
from typing import Any

import http_ece
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from simulator.testing.fcm import PROJECT, access_token, assertion
from simulator.testing.handle import SimulatorHandle, apns_provider_token, running_simulator

# every test: bounded in time, and the servers must log no unexpected error
pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_server_errors")]

TOPIC = "com.example.pushsim"
DEEP = b"[" * 2000 + b"]" * 2000  # under every size limit, deeper than Python's recursion limit


@pytest.fixture(scope="module")
def psim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("robust-p") / "state") as handle:
        yield handle


@pytest.fixture(scope="module")
def client(psim: SimulatorHandle) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=psim.endpoints["ca_file"])
    with httpx.Client(http2=True, verify=ctx, timeout=10) as c:
        yield c


# -- APNs -----------------------------------------------------------------------------


_PROVIDER_TOKENS: dict[str, str] = {}


def provider_token(psim: SimulatorHandle) -> str:
    """One provider token per run: APNs refuses a connection switching tokens too often."""
    key = str(psim.state_dir)
    if key not in _PROVIDER_TOKENS:
        _PROVIDER_TOKENS[key] = apns_provider_token(psim.state_dir)
    return _PROVIDER_TOKENS[key]


def apns(
    psim: SimulatorHandle,
    c: httpx.Client,
    body: bytes = b'{"aps":{"alert":"hi"}}',
    path: str | None = None,
    method: str = "POST",
    **headers: str | bytes,
) -> httpx.Response:
    if path is None:
        path = "/3/device/" + psim.mint("apns")[0]["token"]
    hdrs: dict[str, str | bytes] = {
        "authorization": f"bearer {provider_token(psim)}",
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
    }
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    return c.request(method, psim.endpoints["apns"] + path, content=body, headers=hdrs)


def reason(r: httpx.Response) -> str:
    value: str = r.json()["reason"]
    return value


APNS_BODIES: list[tuple[bytes, str]] = [
    (b"not json", "BadPayload"),
    (b"\xff\xfe\xfd\x00", "BadPayload"),
    (b"[]", "BadPayload"),
    (b"null", "BadPayload"),
    (b'"aps"', "BadPayload"),
    (b'{"aps": 5}', "PayloadEmpty"),
    (b'{"aps": {"alert": "x"}', "BadPayload"),
    (DEEP, "BadPayload"),
]


@pytest.mark.parametrize(("body", "want"), APNS_BODIES, ids=range(len(APNS_BODIES)))
def test_apns_malformed_payloads(
    psim: SimulatorHandle, client: httpx.Client, body: bytes, want: str
) -> None:
    r = apns(psim, client, body)
    assert r.status_code == 400 and reason(r) == want and "apns-id" in r.headers
    assert apns(psim, client).status_code == 200


def test_apns_odd_headers(psim: SimulatorHandle, client: httpx.Client) -> None:
    cases: list[tuple[dict[str, str | bytes], int, str]] = [
        ({"apns-id": "not-a-uuid"}, 400, "BadMessageId"),
        ({"apns-id": "\u00e9".encode("latin-1") * 36}, 400, "BadMessageId"),
        ({"apns-priority": "eleven"}, 400, "BadPriority"),
        ({"apns-priority": "9" * 50}, 400, "BadPriority"),
        ({"apns-expiration": "soon"}, 400, "BadExpirationDate"),
        ({"apns-expiration": "-1"}, 400, "BadExpirationDate"),
        ({"apns-expiration": "9" * 400}, 400, "BadExpirationDate"),
        ({"apns-push-type": "telepathy"}, 400, "InvalidPushType"),
        ({"apns-push-type": b"\x7f\x01"}, 400, "InvalidPushType"),
        ({"apns-collapse-id": "c" * 65}, 400, "BadCollapseId"),
        ({"apns-topic": b"\xe9\xe9.\x01"}, 400, "BadTopic"),
        ({"apns-topic": "t" * 5000}, 400, "BadTopic"),
        ({"authorization": "bearer"}, 403, "InvalidProviderToken"),
        ({"authorization": b"bearer \xe9\xe9.\xe9.\xe9"}, 403, "InvalidProviderToken"),
        ({"authorization": "bearer a.b.c"}, 403, "InvalidProviderToken"),
        ({"authorization": "basic " + "x" * 3000}, 403, "InvalidProviderToken"),
    ]
    for headers, status, want in cases:
        r = apns(psim, client, **headers)
        if r.status_code != status or reason(r) != want:
            # a rejected provider token may close the connection's auth: note what came back
            raise AssertionError((headers, r.status_code, r.text))
    # Latin-1 bytes that are not UTF-8, and a header value of 8 KB
    r = apns(psim, client, x_odd=b"\xff\xfe", x_big="v" * 8000)
    assert r.status_code == 200, r.text


def test_apns_wrong_methods_and_paths(psim: SimulatorHandle, client: httpx.Client) -> None:
    token = psim.mint("apns")[0]["token"]
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        r = apns(psim, client, path=f"/3/device/{token}", method=method)
        assert r.status_code == 405 and reason(r) == "MethodNotAllowed"
    for path, status, want in [
        ("/3/device/", 400, "MissingDeviceToken"),
        ("/3/device/%41%42", 400, "BadDeviceToken"),
        (f"/3/device/../device/{token}", 400, "BadDeviceToken"),
        (f"/3/device/{token}/..", 400, "BadDeviceToken"),
        (f"/3/device/{token}?x=1", 400, "BadDeviceToken"),
        ("/3/device/%zz%00", 400, "BadDeviceToken"),
        ("/3/devices/x", 404, "BadPath"),
        ("/%2e%2e/3/device/x", 404, "BadPath"),
        ("/" + "a" * 8000, 404, "BadPath"),
    ]:
        r = client.post(
            psim.endpoints["apns"] + path,
            content=b'{"aps":{}}',
            headers={
                "authorization": f"bearer {provider_token(psim)}",
                "apns-topic": TOPIC,
            },
            extensions={"target": path.encode()},  # sent as is, not normalised
        )
        assert (r.status_code, reason(r)) == (status, want), path
    assert apns(psim, client).status_code == 200


# -- FCM --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fcm_token(psim: SimulatorHandle) -> str:
    return access_token(psim)


def fcm(
    c: httpx.Client, psim: SimulatorHandle, token: str, body: bytes, **hdrs: str | bytes
) -> httpx.Response:
    return c.post(
        f"{psim.endpoints['fcm']}/v1/projects/{PROJECT}/messages:send",
        content=body,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json", **hdrs},
    )


def fcm_ok(c: httpx.Client, psim: SimulatorHandle, token: str) -> None:
    dev = psim.mint("fcm")[0]
    body = json.dumps({"message": {"token": dev["token"], "data": {"k": "v"}}}).encode()
    r = fcm(c, psim, token, body)
    assert r.status_code == 200 and r.json()["name"].startswith(f"projects/{PROJECT}/messages/")


def _wrong_types() -> list[Any]:
    bad: list[Any] = [5, "s", [], None, True, 1.5, {"x": {}}]
    out: list[Any] = []
    for v in bad:
        out += [
            v,
            {"message": v},
            {"message": {"token": v}},
            {"message": {"token": "t", "data": v}},
            {"message": {"token": "t", "data": {"k": v}}},
            {"message": {"token": "t", "notification": v}},
            {"message": {"token": "t", "notification": {"title": v}}},
            {"message": {"token": "t", "android": v}},
            {"message": {"token": "t", "android": {"ttl": v}}},
            {"message": {"token": "t", "android": {"priority": v}}},
            {"message": {"token": "t", "android": {"notification": v}}},
            {"message": {"token": "t", "apns": {"headers": v}}},
            {"message": {"token": "t", "apns": {"payload": v}}},
            {"message": {"token": "t", "webpush": {"headers": v}}},
            {"message": {"token": "t", "fcm_options": v}},
            {"message": {"topic": v}},
            {"message": {"condition": v}},
            {"message": {"token": "t"}, "validate_only": v},
        ]
    return out


def test_fcm_wrong_types_at_every_level(
    psim: SimulatorHandle, client: httpx.Client, fcm_token: str
) -> None:
    for doc in _wrong_types():
        r = fcm(client, psim, fcm_token, json.dumps(doc).encode())
        if r.status_code == 200 and '"s"' in json.dumps(doc):
            continue  # a string where one is expected (a topic named "s")
        assert r.status_code in (400, 404), (doc, r.status_code, r.text)
        err = r.json()["error"]
        assert err["status"] in ("INVALID_ARGUMENT", "NOT_FOUND") and err["code"] == r.status_code
    fcm_ok(client, psim, fcm_token)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"\xff\xfe",
        b"\x00" * 100,
        DEEP,
        b'{"message":' * 1000 + b"1" + b"}" * 1000,
        b'{"message": {"token": "' + b"t" * 5000 + b'"}}',
        b"1e999999",
        b'"\\ud800"',
    ],
    ids=range(9),
)
def test_fcm_invalid_json(
    psim: SimulatorHandle, client: httpx.Client, fcm_token: str, body: bytes
) -> None:
    r = fcm(client, psim, fcm_token, body)
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT", r.text
    fcm_ok(client, psim, fcm_token)


def test_fcm_wrong_content_type_and_auth(
    psim: SimulatorHandle, client: httpx.Client, fcm_token: str
) -> None:
    dev = psim.mint("fcm")[0]
    body = json.dumps({"message": {"token": dev["token"]}}).encode()
    # Google accepts the JSON whatever the content type says.
    r = fcm(client, psim, fcm_token, body, content_type="text/plain")
    assert r.status_code in (200, 400), r.text
    for auth in ("Bearer", b"Bearer \xe9\xe9", "Basic x", "Bearer " + "x" * 5000, ""):
        r = fcm(client, psim, fcm_token, body, authorization=auth)
        assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED", auth
    fcm_ok(client, psim, fcm_token)


def test_oauth_token_endpoint_malformed(psim: SimulatorHandle, client: httpx.Client) -> None:
    url = psim.endpoints["oauth_token_uri"]
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    cases: list[tuple[bytes, str]] = [
        (b"", "application/x-www-form-urlencoded"),
        (b"\xff\xfe=\x00&&&==", "application/x-www-form-urlencoded"),
        (b"grant_type=" + grant.encode(), "application/x-www-form-urlencoded"),
        (b"grant_type=password&assertion=x", "application/x-www-form-urlencoded"),
        (f"grant_type={grant}&assertion=a.b.c".encode(), "application/x-www-form-urlencoded"),
        (f"grant_type={grant}&assertion=%ZZ%".encode(), "application/x-www-form-urlencoded"),
        (b"{", "application/json"),
        (b"[1,2]", "application/json"),
        (DEEP, "application/json"),
        (json.dumps({"grant_type": grant, "assertion": 5}).encode(), "application/json"),
        (b"grant_type=x", "text/plain"),
        (b"a" * 100_000, "application/x-www-form-urlencoded"),
    ]
    for body, ctype in cases:
        r = client.post(url, content=body, headers={"content-type": ctype})
        assert r.status_code in (400, 401), (body[:40], r.status_code, r.text)
        assert "error" in r.json(), r.text
    # an expired assertion and one signed for another audience
    for claims in ({"exp": int(time.time()) - 1000, "iat": int(time.time()) - 2000}, {"aud": "x"}):
        r = client.post(url, data={"grant_type": grant, "assertion": assertion(psim, **claims)})
        assert r.status_code in (400, 401) and "error" in r.json()
    r = client.post(url, data={"grant_type": grant, "assertion": assertion(psim)})
    assert r.status_code == 200 and r.json()["token_type"] == "Bearer"


# -- Web Push ---------------------------------------------------------------------------


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def vapid(psim: SimulatorHandle) -> dict[str, str]:
    meta: dict[str, str] = json.loads((psim.state_dir / "webpush" / "vapid.json").read_text())
    return meta


def vapid_header(psim: SimulatorHandle, vapid: dict[str, str]) -> str:
    claims = {
        "aud": psim.endpoints["webpush"],
        "exp": int(time.time()) + 3600,
        "sub": vapid["subject"],
    }
    token = jwt.encode(claims, vapid["private_key"], algorithm="ES256")
    return f"vapid t={token}, k={vapid['public_key']}"


def encrypt(dev: dict[str, Any], data: bytes = b'{"ok":true}', rs: int = 4096) -> bytes:
    keys = dev["subscription"]["keys"]
    out: bytes = http_ece.encrypt(
        data,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=b64d(keys["p256dh"]),
        auth_secret=b64d(keys["auth"]),
        version="aes128gcm",
        rs=rs,
    )
    return out


def wp_post(
    c: httpx.Client, dev: dict[str, Any], body: bytes, auth: str | bytes | None, **hdrs: str | bytes
) -> httpx.Response:
    headers: dict[str, str | bytes] = {"ttl": "60", "content-encoding": "aes128gcm"}
    if auth is not None:
        headers["authorization"] = auth
    headers.update({k.replace("_", "-"): v for k, v in hdrs.items()})
    return c.post(dev["subscription"]["endpoint"], content=body, headers=headers)


def test_webpush_malformed_bodies(
    psim: SimulatorHandle, client: httpx.Client, vapid: dict[str, str]
) -> None:
    dev = psim.mint("webpush", application_server_key=vapid["public_key"])[0]
    auth = vapid_header(psim, vapid)
    good = encrypt(dev)
    salt_rs = good[:16] + struct.pack(">I", 4096)
    cases = {
        "shorter than the header": good[:20],
        "header only": good[:86],
        "record size 0": good[:16] + struct.pack(">I", 0) + good[20:],
        "record size 17": good[:16] + struct.pack(">I", 17) + good[20:],
        "record size smaller than the record": encrypt(dev, b"x" * 200, rs=4096)[:16]
        + struct.pack(">I", 40)
        + encrypt(dev, b"x" * 200)[20:],
        "idlen 0": salt_rs + b"\x00" + good[86:],
        "idlen 255": salt_rs + b"\xff" + good[86:],
        "keyid not a point": salt_rs + b"\x41" + b"\x04" + b"\x00" * 64 + good[86:],
        "ciphertext flipped": good[:-1] + bytes([good[-1] ^ 1]),
        "random": bytes(range(256)),
    }
    for name, body in cases.items():
        r = wp_post(client, dev, body, auth)
        assert r.status_code == 400, (name, r.status_code, r.text)
    r = wp_post(client, dev, good, auth, content_encoding="gzip")
    assert r.status_code in (400, 415), r.text
    assert wp_post(client, dev, encrypt(dev), auth).status_code == 201


def test_webpush_bad_vapid_and_headers(
    psim: SimulatorHandle, client: httpx.Client, vapid: dict[str, str]
) -> None:
    dev = psim.mint("webpush", application_server_key=vapid["public_key"])[0]
    good = vapid_header(psim, vapid)
    token = good.split("t=")[1].split(",")[0]
    bad_auth = [
        "vapid",
        "vapid ",
        "vapid t=",
        "vapid t=, k=",
        f"vapid t={token}",
        f"vapid k={vapid['public_key']}",
        f"vapid t={token}, k=!!!not-base64!!!",
        f"vapid t={token}, k={vapid['public_key'][:20]}",
        f"vapid t=!!!.!!!.!!!, k={vapid['public_key']}",
        f"vapid t={token} k={vapid['public_key']}",
        f"WebPush {token}",
        "Bearer x",
        b"vapid t=\xe9\xe9, k=\xe9",
        "vapid " + "t=" * 3000,
    ]
    for auth in bad_auth:
        r = wp_post(client, dev, encrypt(dev), auth)
        assert r.status_code in (400, 401, 403), (auth[:20], auth[-30:], r.status_code, r.text)
    for hdrs in (
        {"ttl": "-1"},
        {"ttl": "abc"},
        {"ttl": "9" * 40},
        {"urgency": b"\xe9"},
        {"topic": "bad topic!"},
        {"topic": "t" * 33},
    ):
        r = wp_post(client, dev, encrypt(dev), good, **hdrs)
        assert r.status_code == 400, (hdrs, r.text)
    for path in ("/wp/", "/wp/%00", "/wp/../m/x", "/wp/" + "a" * 5000, "/m/%zz"):
        r = client.post(
            psim.endpoints["webpush"] + path,
            content=b"x",
            headers={"ttl": "1"},
            extensions={"target": path.encode()},
        )
        assert r.status_code in (404, 405), (path, r.status_code)
    r = client.get(dev["subscription"]["endpoint"])
    assert r.status_code in (404, 405)
    assert wp_post(client, dev, encrypt(dev), good).status_code == 201
