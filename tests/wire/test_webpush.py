"""The Web Push service over real sockets: pywebpush (sync and async) and an h2 client."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import http_ece
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid01, Vapid02
from pywebpush import WebPushException, webpush, webpush_async

from simulator.testing.handle import SimulatorHandle, running_simulator


@pytest.fixture(scope="module")
def wp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("webpush") / "state") as handle:
        yield handle


@pytest.fixture
def vapid(wp: SimulatorHandle) -> Iterator[dict[str, str]]:
    meta: dict[str, str] = json.loads((wp.state_dir / "webpush" / "vapid.json").read_text())
    yield meta
    wp.control("PATCH", "/_sim/webpush/config", {"flavour": "mozilla", "rate_per_second": None})


@pytest.fixture
def ca_env(wp: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", wp.endpoints["ca_file"])


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def subscribe(wp: SimulatorHandle, vapid: dict[str, str], bound: bool = True) -> dict[str, Any]:
    extra = {"application_server_key": vapid["public_key"]} if bound else {}
    return wp.mint("webpush", **extra)[0]


def inbox(wp: SimulatorHandle, dev: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = wp.control("GET", f"/_sim/devices/{dev['id']}/inbox")[
        "messages"
    ]
    return messages


def test_pywebpush_aes128gcm_with_vapid(
    wp: SimulatorHandle, vapid: dict[str, str], ca_env: None
) -> None:
    dev = subscribe(wp, vapid)
    resp = webpush(
        dev["subscription"],
        json.dumps({"title": "Hello", "correlation_id": "corr-1"}),
        vapid_private_key=Vapid02.from_pem(vapid["private_key"].encode()),
        vapid_claims={"sub": vapid["subject"]},
        ttl=300,
        headers={"Urgency": "high", "Topic": "greeting"},
    )
    assert resp.status_code == 201
    assert resp.headers["location"].startswith(wp.endpoints["webpush"] + "/m/")
    [msg] = inbox(wp, dev)
    assert msg["payload"] == {"title": "Hello", "correlation_id": "corr-1"}
    assert msg["correlation_id"] == "corr-1"
    assert msg["urgency"] == "high" and msg["topic"] == "greeting" and msg["ttl"] == 300
    assert msg["vapid"]["sub"] == vapid["subject"] and msg["vapid"]["k"] == vapid["public_key"]
    assert msg["http_version"] == "1.1" and msg["content_encoding"] == "aes128gcm"


def test_pywebpush_legacy_aesgcm_and_webpush_scheme(
    wp: SimulatorHandle, vapid: dict[str, str], ca_env: None, tmp_path: Path
) -> None:
    dev = subscribe(wp, vapid)
    key_file = tmp_path / "vapid_private.pem"
    key_file.write_text(vapid["private_key"])
    resp = webpush(
        dev["subscription"],
        "plain text, legacy coding",
        vapid_private_key=Vapid01.from_file(str(key_file)),
        vapid_claims={"sub": vapid["subject"]},
        ttl=60,
        content_encoding="aesgcm",
    )
    assert resp.status_code == 201
    [msg] = inbox(wp, dev)
    assert msg["payload_text"] == "plain text, legacy coding" and msg["payload"] is None
    assert msg["content_encoding"] == "aesgcm"
    # the key-file path form pywebpush documents works as well
    resp = webpush(
        dev["subscription"],
        "by path",
        vapid_private_key=str(key_file),
        vapid_claims={"sub": vapid["subject"]},
        ttl=60,
    )
    assert resp.status_code == 201 and inbox(wp, dev)[-1]["payload_text"] == "by path"


def test_pywebpush_410_path(wp: SimulatorHandle, vapid: dict[str, str], ca_env: None) -> None:
    dev = subscribe(wp, vapid)
    wp.control("DELETE", f"/_sim/devices/{dev['id']}")
    with pytest.raises(WebPushException) as info:
        webpush(
            dev["subscription"],
            "anyone there?",
            vapid_private_key=Vapid02.from_pem(vapid["private_key"].encode()),
            vapid_claims={"sub": vapid["subject"]},
            ttl=60,
        )
    assert info.value.response is not None and info.value.response.status_code == 410
    assert info.value.response.json()["errno"] == 106
    dead = wp.control("GET", "/_sim/dead_tokens")["tokens"]
    assert any(t["device_id"] == dev["id"] and t["count"] == 1 for t in dead)


def test_pywebpush_async_delivers_and_reaches_410(
    wp: SimulatorHandle, vapid: dict[str, str]
) -> None:
    live, gone = subscribe(wp, vapid), subscribe(wp, vapid)
    wp.control("DELETE", f"/_sim/devices/{gone['id']}")
    ctx = ssl.create_default_context(cafile=wp.endpoints["ca_file"])
    signer = Vapid02.from_pem(vapid["private_key"].encode())

    async def main() -> tuple[int, int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
            ok = await webpush_async(
                live["subscription"],
                json.dumps({"n": 1}),
                vapid_private_key=signer,
                vapid_claims={"sub": vapid["subject"]},
                ttl=30,
                aiohttp_session=session,
            )
            assert not isinstance(ok, str)
            try:
                await webpush_async(
                    gone["subscription"],
                    "x",
                    vapid_private_key=signer,
                    vapid_claims={"sub": vapid["subject"]},
                    ttl=30,
                    aiohttp_session=session,
                )
            except WebPushException as exc:
                return ok.status, exc.response.status
            return ok.status, 0

    assert asyncio.run(main()) == (201, 410)
    assert inbox(wp, live)[0]["payload"] == {"n": 1}


# -- every status through the h2 listener -------------------------------------------


class Sender:
    def __init__(self, wp: SimulatorHandle, vapid: dict[str, str]) -> None:
        self.wp = wp
        self.base = wp.endpoints["webpush"]
        self.vapid = vapid
        self.client = httpx.Client(
            http2=True, verify=ssl.create_default_context(cafile=wp.endpoints["ca_file"])
        )

    def auth(self, **claims: Any) -> str:
        body = {
            "aud": self.base,
            "exp": int(time.time()) + 3600,
            "sub": self.vapid["subject"],
            **claims,
        }
        token = jwt.encode(body, self.vapid["private_key"], algorithm="ES256")
        return f"vapid t={token}, k={self.vapid['public_key']}"

    def post(
        self,
        dev: dict[str, Any],
        data: bytes | None = b'{"ok":true}',
        body: bytes | None = None,
        **headers: str,
    ) -> httpx.Response:
        keys = dev["subscription"]["keys"]
        hdrs = {"ttl": "60", "authorization": self.auth()}
        if body is None and data is not None:
            body = http_ece.encrypt(
                data,
                private_key=ec.generate_private_key(ec.SECP256R1()),
                dh=b64d(keys["p256dh"]),
                auth_secret=b64d(keys["auth"]),
                version="aes128gcm",
            )
            hdrs["content-encoding"] = "aes128gcm"
        hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
        hdrs = {k: v for k, v in hdrs.items() if v != "-"}
        return self.client.post(dev["subscription"]["endpoint"], content=body or b"", headers=hdrs)


def test_every_status_over_h2(wp: SimulatorHandle, vapid: dict[str, str]) -> None:
    s = Sender(wp, vapid)
    dev = subscribe(wp, vapid)
    with s.client:
        ok = s.post(dev)
        assert ok.http_version == "HTTP/2" and ok.status_code == 201 and "location" in ok.headers
        assert inbox(wp, dev)[-1]["http_version"] == "2"

        def status(**kw: Any) -> tuple[int, dict[str, Any]]:
            r = s.post(dev, **kw)
            return r.status_code, r.json() if r.content else {}

        assert status(ttl="-")[0] == 400
        assert status(urgency="asap")[0] == 400
        assert status(topic="way-too-long-topic-name-over-32-characters")[0] == 400
        code, body = status(body=b"\x01" * 200, content_encoding="aes128gcm")
        assert code == 400 and "idlen" in body["message"]
        code, body = status(authorization="-")
        assert code == 401 and body["errno"] == 109
        code, body = status(authorization=s.auth(aud="https://elsewhere.example"))
        assert code == 403 and "aud" in body["message"]
        assert s.post(dev, body=b"\x00" * 5000, content_encoding="aes128gcm").status_code == 413
        unknown = {"subscription": {**dev["subscription"], "endpoint": s.base + "/wp/nope"}}
        assert s.post(unknown, data=None).status_code == 404

        wp.control("PATCH", "/_sim/webpush/config", {"rate_per_second": 0.01, "rate_burst": 1})
        limited = subscribe(wp, vapid)
        assert s.post(limited).status_code == 201
        r = s.post(limited)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1

        wp.control("POST", f"/_sim/webpush/subscriptions/{dev['id']}/expire")
        assert s.post(dev).status_code == 410
        wp.control("PATCH", "/_sim/webpush/config", {"flavour": "google"})
        r = s.post(dev)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
    stats = wp.control("GET", "/_sim/stats")["providers"]["webpush"]
    assert stats["delivered"] >= 2 and stats["rate_limited"] >= 1 and stats["decrypt"] >= 1


def test_offline_browser_gets_held_messages_when_back_online(
    wp: SimulatorHandle, vapid: dict[str, str]
) -> None:
    s = Sender(wp, vapid)
    dev = subscribe(wp, vapid)
    wp.control("POST", f"/_sim/devices/{dev['id']}/online", {"online": False})
    with s.client:
        assert s.post(dev, b'{"n":1}', topic="t1").status_code == 201
        assert s.post(dev, b'{"n":2}', topic="t1").status_code == 201
        assert s.post(dev, b'{"n":3}', ttl="0").status_code == 201
    assert inbox(wp, dev) == []
    held = wp.control("GET", f"/_sim/webpush/pending/{dev['id']}")["messages"]
    assert [m["payload"] for m in held] == [{"n": 2}]
    wp.control("POST", f"/_sim/devices/{dev['id']}/online", {"online": True})
    assert [m["payload"] for m in inbox(wp, dev)] == [{"n": 2}]


def test_config_rejects_bad_values(wp: SimulatorHandle) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as info:
        wp.control("PATCH", "/_sim/webpush/config", {"flavour": "opera"})
    assert info.value.code == 400
    assert wp.control("GET", "/_sim/webpush/config")["flavour"] == "mozilla"
