"""The Web Push core without sockets: a fake clock, a registry, requests in, actions out."""

from __future__ import annotations

import base64
import json
import random
import time
from typing import Any

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushsim.clock import FakeClock
from simulator.providers.webpush.core import WebPushConfig, WebPushCore
from simulator.state.devices import Device, DeviceRegistry
from simulator.state.stats import Stats
from simulator.wire import ConnectionInfo, Request, Respond

BASE = "https://127.0.0.1:4443"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AppServer:
    """A sender: a VAPID key pair, encryption, and requests."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = b64(
            self.key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        self.pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwt(self, now: float, **claims: Any) -> str:
        body = {"aud": BASE, "exp": int(now + 3600), "sub": "mailto:ops@example.com", **claims}
        return jwt.encode(
            {k: v for k, v in body.items() if v is not None}, self.pem, algorithm="ES256"
        )

    def vapid(self, now: float, **claims: Any) -> str:
        return f"vapid t={self.jwt(now, **claims)}, k={self.public}"

    def encrypt(self, dev: Device, data: bytes) -> bytes:
        assert dev.webpush is not None
        body: bytes = http_ece.encrypt(
            data,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=b64d(dev.webpush.p256dh),
            auth_secret=b64d(dev.webpush.auth),
            version="aes128gcm",
        )
        return body


class World:
    def __init__(self, config: WebPushConfig | None = None) -> None:
        self.clock = FakeClock(time.time())
        self.registry = DeviceRegistry(self.clock, random.Random(7), BASE)
        self.stats = Stats(self.clock)
        self.core = WebPushCore(self.registry, self.clock, self.stats, config, random.Random(1))
        self.conn = ConnectionInfo(1, "webpush", "2", True, None, 0.0)
        self.app = AppServer()

    def mint(self, bound: bool = True) -> Device:
        return self.registry.mint(
            "webpush", application_server_key=self.app.public if bound else None
        )[0]

    def send(
        self,
        dev: Device | str,
        data: bytes | None = b'{"msg":"hi","correlation_id":"c-1"}',
        *,
        headers: dict[str, str] | None = None,
        vapid: bool = True,
        body: bytes | None = None,
        method: str = "POST",
    ) -> Respond:
        token = dev if isinstance(dev, str) else dev.token
        hdrs = {"ttl": "60"}
        if data is not None and not isinstance(dev, str):
            body = self.app.encrypt(dev, data) if body is None else body
            hdrs["content-encoding"] = "aes128gcm"
        if vapid:
            hdrs["authorization"] = self.app.vapid(self.clock.time())
        hdrs.update(headers or {})
        req = Request(
            method,
            f"/wp/{token}",
            [(k, v) for k, v in hdrs.items() if v is not None],
            body or b"",
            self.conn,
            1,
            "127.0.0.1:4443",
        )
        action = self.core.handle(req)
        assert isinstance(action, Respond)
        return action


def detail(resp: Respond) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(resp.body)
    return parsed


def test_delivers_decrypted_payload_with_correlation() -> None:
    w = World()
    dev = w.mint()
    resp = w.send(dev)
    assert resp.status == 201
    hdrs = dict(resp.headers)
    assert hdrs["location"].startswith("https://127.0.0.1:4443/m/") and hdrs["ttl"] == "60"
    msg = dev.inbox[-1]
    assert msg["payload"] == {"msg": "hi", "correlation_id": "c-1"}
    assert msg["payload_text"] == '{"msg":"hi","correlation_id":"c-1"}'
    assert msg["correlation_id"] == "c-1" and msg["urgency"] == "normal"
    assert w.registry.deliveries[-1]["correlation_id"] == "c-1"


@pytest.mark.parametrize(
    ("headers", "errno", "words"),
    [
        ({"ttl": None}, 111, "missing TTL"),
        ({"ttl": "-1"}, 112, "TTL must be"),
        ({"ttl": "soon"}, 112, "TTL must be"),
        ({"urgency": "urgent"}, 111, "Urgency must be"),
        ({"topic": "x" * 33}, 113, "Topic"),
        ({"topic": "no spaces"}, 113, "Topic"),
        ({"content-encoding": "gzip"}, 110, "unsupported Content-Encoding"),
        ({"content-encoding": None}, 101, "Content-Encoding"),
    ],
)
def test_bad_headers_are_400_in_autopush_shape(
    headers: dict[str, str], errno: int, words: str
) -> None:
    w = World()
    resp = w.send(w.mint(), headers=headers)
    assert resp.status == 400
    body = detail(resp)
    assert body["code"] == 400 and body["errno"] == errno and words in body["message"]


def test_empty_body_is_a_tickle_and_oversized_is_413() -> None:
    w = World()
    dev = w.mint()
    assert w.send(dev, None).status == 201 and dev.inbox[-1]["payload_text"] is None
    resp = w.send(dev, body=b"\x00" * 4097)
    assert resp.status == 413 and detail(resp)["errno"] == 104


def test_undecryptable_body_says_why() -> None:
    w = World()
    a, b = w.mint(), w.mint()
    resp = w.send(a, body=w.app.encrypt(b, b"for someone else"))
    assert resp.status == 400 and "tag mismatch" in detail(resp)["message"]
    assert not a.inbox


def test_vapid_rules() -> None:
    w = World()
    dev = w.mint()
    now = w.clock.time()
    assert w.send(dev, vapid=False).status == 401
    cases = {
        "aud": {"aud": "https://push.example.net"},
        "exp past": {"exp": int(now - 1)},
        "exp > 24h": {"exp": int(now + 86400 + 120)},
        "sub": {"sub": "ops@example.com"},
        "no sub": {"sub": None},
    }
    for name, claims in cases.items():
        auth = w.app.vapid(now, **claims)
        resp = w.send(dev, headers={"authorization": auth})
        assert resp.status == 403, name
    other = AppServer()
    resp = w.send(dev, headers={"authorization": other.vapid(now)})
    assert resp.status == 403 and "applicationServerKey" in detail(resp)["message"]
    forged = f"vapid t={other.jwt(now)}, k={w.app.public}"
    assert w.send(dev, headers={"authorization": forged}).status == 403
    assert w.send(dev, headers={"authorization": "vapid t=abc"}).status == 401
    assert w.send(dev, headers={"authorization": "Basic Zm9vOmJhcg=="}).status == 401


def test_older_webpush_scheme_with_crypto_key() -> None:
    w = World()
    dev = w.mint()
    headers = {
        "authorization": f"WebPush {w.app.jwt(w.clock.time())}",
        "crypto-key": f"p256ecdsa={w.app.public}",
    }
    assert w.send(dev, headers=headers).status == 201
    assert w.send(dev, headers={**headers, "crypto-key": "dh=abc"}).status == 401


def test_vapid_is_verified_once_per_key_and_token_but_expiry_rechecked() -> None:
    w = World()
    dev = w.mint()
    auth = w.app.vapid(w.clock.time())
    for _ in range(3):
        assert w.send(dev, headers={"authorization": auth}).status == 201
    assert w.core.vapid.verifications == 1
    w.clock.advance(3601)
    assert w.send(dev, headers={"authorization": auth}).status == 403


def test_unbound_subscription_needs_no_vapid_unless_apple() -> None:
    w = World()
    dev = w.mint(bound=False)
    assert w.send(dev, vapid=False).status == 201
    assert w.send(dev).status == 201  # VAPID from any key is fine when not bound
    w.core.config.flavour = "apple"
    resp = w.send(dev, vapid=False)
    assert resp.status == 401 and detail(resp) == {"reason": "MissingProviderToken"}


def test_unknown_unsubscribed_and_expired_per_flavour() -> None:
    w = World(WebPushConfig(subscription_lifetime=100))
    gone, expiring = w.mint(), w.mint()
    w.registry.uninstall(gone.id)
    resp = w.send("never-issued-subscription")
    assert resp.status == 404 and detail(resp)["errno"] == 102
    resp = w.send(gone)
    assert resp.status == 410 and detail(resp)["errno"] == 106
    w.clock.advance(101)
    resp = w.send(expiring)
    assert resp.status == 410 and detail(resp)["errno"] == 103
    assert (("webpush", expiring.token)) in w.registry.rejections
    w.core.config.flavour = "google"
    resp = w.send(expiring)
    assert resp.status == 404 and resp.body.startswith(b"push subscription has expired")
    assert w.send(gone).status == 410
    w.core.config.flavour = "apple"
    assert detail(w.send(gone)) == {"reason": "Unregistered"}
    w.core.config.unsubscribed_status = 404
    assert w.send(gone).status == 404
    assert w.registry.rejections[("webpush", gone.token)]["count"] == 4


def test_rate_limit_429_with_retry_after() -> None:
    w = World(WebPushConfig(rate_per_second=0.5, rate_burst=2))
    dev = w.mint()
    assert [w.send(dev).status for _ in range(2)] == [201, 201]
    resp = w.send(dev)
    assert resp.status == 429 and dict(resp.headers)["retry-after"] == "2"
    w.clock.advance(2)
    assert w.send(dev).status == 201


def test_offline_browser_holds_until_ttl_and_topic_replaces() -> None:
    w = World()
    dev = w.mint()
    dev.online = False
    assert w.send(dev, b'{"n":1}', headers={"ttl": "10"}).status == 201
    assert w.send(dev, b'{"n":2}', headers={"ttl": "1000", "topic": "score"}).status == 201
    assert (
        w.send(dev, b'{"n":3}', headers={"ttl": "1000", "topic": "score", "urgency": "high"}).status
        == 201
    )
    assert w.send(dev, b'{"n":4}', headers={"ttl": "0"}).status == 201  # dropped: offline
    assert not dev.inbox and len(dev.pending) == 2
    w.clock.advance(11)
    dev.online = True
    w.core.device_online(dev)
    assert [m["payload"] for m in dev.inbox] == [{"n": 3}]
    assert (
        dev.inbox[0]["urgency"] == "high"
        and dev.inbox[0]["delivered_at"] - dev.inbox[0]["at"] >= 11
    )
    counts = w.stats.snapshot()["providers"]["webpush"]
    assert counts["replaced_by_topic"] == 1 and counts["expired_undelivered"] == 1
    assert counts["dropped_ttl0_offline"] == 1


def test_ttl_above_service_maximum_is_lowered_and_said() -> None:
    w = World()
    resp = w.send(w.mint(), headers={"ttl": "99999999"})
    assert resp.status == 201 and dict(resp.headers)["ttl"] == "2592000"


def test_delete_cancels_an_undelivered_message() -> None:
    w = World()
    dev = w.mint()
    dev.online = False
    loc = dict(w.send(dev).headers)["location"]
    path = loc[len("https://127.0.0.1:4443") :]
    req = Request("DELETE", path, [], b"", w.conn, 3, "127.0.0.1:4443")
    first, again = w.core.handle(req), w.core.handle(req)
    assert isinstance(first, Respond) and first.status == 204 and not dev.pending
    assert isinstance(again, Respond) and again.status == 404


def test_method_and_path() -> None:
    w = World()
    assert w.send(w.mint(), method="GET").status == 405
    req = Request("POST", "/nope", [], b"", w.conn, 1, "127.0.0.1:4443")
    resp = w.core.handle(req)
    assert isinstance(resp, Respond) and resp.status == 404
