"""The simulator's control API (``/_sim/...``) and the sender's API (``/v1/...``) against
malformed input over real sockets: invalid JSON, wrong types, missing fields, huge values,
unknown ids. Every answer is a 4xx JSON error (400 naming the field where the contract
says so), never a 500, and the server answers a normal request afterwards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sender.api.app import make_app
from sender.config.simulator_dir import from_simulator_dir
from sender.service import Sender
from simulator.testing.handle import SimulatorHandle, running_simulator

# every test: bounded in time, and the servers must log no unexpected error
pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_server_errors")]

DEEP = "[" * 5000 + "]" * 5000
BAD_BODIES: list[bytes] = [
    b"{",
    b"\xff\xfe\x00",
    b"[]",
    b"null",
    b"5",
    b'"text"',
    DEEP.encode(),
    json.dumps(["y" * 200_000]).encode(),
]
WRONG_VALUES: list[Any] = [None, True, -1, 1e308, 10**30, "x" * 5000, [], {}, [1], {"a": 1}, "\x00"]


@pytest.fixture(scope="module")
def asim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("robust-api") / "state", tls=False) as h:
        yield h


async def call(
    s: aiohttp.ClientSession, method: str, url: str, body: bytes | None = None
) -> tuple[int, Any]:
    async with s.request(
        method, url, data=body, headers={"content-type": "application/json"}
    ) as resp:
        text = await resp.text(errors="replace")
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


def client_error(status: int, doc: Any, where: str) -> None:
    assert 400 <= status < 500, (where, status, doc)
    if status == 400:
        assert isinstance(doc, dict) and isinstance(doc.get("error"), str), (where, doc)


# -- the control API --------------------------------------------------------------------

CONTROL_WRITES = [
    ("POST", "/_sim/devices"),
    ("POST", "/_sim/devices/{dev}/online"),
    ("POST", "/_sim/faults"),
    ("POST", "/_sim/fcm/config"),
    ("POST", "/_sim/fcm/errors"),
    ("POST", "/_sim/fcm/devices/{dev}"),
    ("POST", "/_sim/apns/keys"),
    ("POST", "/_sim/apns/certificates"),
    ("PATCH", "/_sim/apns/config"),
    ("PATCH", "/_sim/webpush/config"),
    ("PUT", "/_sim/webpush/config"),
]


async def test_control_api_bad_bodies(asim: SimulatorHandle) -> None:
    base = asim.endpoints["control"]
    dev = asim.mint("fcm")[0]["id"]
    async with aiohttp.ClientSession() as s:
        for method, path in CONTROL_WRITES:
            url = base + path.format(dev=dev)
            for body in BAD_BODIES:
                status, doc = await call(s, method, url, body)
                client_error(status, doc, f"{method} {path} {body[:20]!r}")
            # JSON objects whose every known field has the wrong type
            for value in WRONG_VALUES:
                doc_in = {
                    k: value
                    for k in (
                        "provider",
                        "count",
                        "online",
                        "kind",
                        "faults",
                        "at",
                        "quota",
                        "errors",
                        "flavour",
                        "rate_per_second",
                        "key_id",
                        "team_id",
                        "device_rate",
                        "fail_with",
                        "state",
                        "share",
                        "pem",
                    )
                }
                status, doc = await call(s, method, url, json.dumps(doc_in).encode())
                assert status < 500, (method, path, value, status, doc)
        # the API still answers
        status, doc = await call(s, "POST", base + "/_sim/devices", b'{"provider":"apns"}')
        assert status == 201 and doc["devices"][0]["provider"] == "apns"


async def test_control_api_named_fields_and_unknown_ids(asim: SimulatorHandle) -> None:
    base = asim.endpoints["control"]
    async with aiohttp.ClientSession() as s:
        for body, field in [
            ({"provider": "carrier-pigeon"}, "provider"),
            ({"provider": 5}, "provider"),
            ({}, "provider"),
            ({"provider": "apns", "count": -1}, "count"),
            ({"provider": "apns", "count": "ten"}, "count"),
            ({"provider": "apns", "count": 10**12}, "count"),
            ({"provider": "apns", "count": True}, "count"),
        ]:
            status, doc = await call(s, "POST", base + "/_sim/devices", json.dumps(body).encode())
            assert status == 400 and doc.get("field") == field, (body, doc)
        for method, path in [
            ("GET", "/_sim/devices/nope"),
            ("GET", "/_sim/devices/nope/inbox"),
            ("DELETE", "/_sim/devices/nope"),
            ("POST", "/_sim/devices/nope/rotate"),
            ("POST", "/_sim/devices/nope/online"),
            ("POST", "/_sim/apns/devices/nope/expire"),
            ("POST", "/_sim/webpush/subscriptions/nope/expire"),
            ("GET", "/_sim/webpush/pending/nope"),
            ("DELETE", "/_sim/faults/nope"),
            ("DELETE", "/_sim/apns/keys/nope"),
            ("GET", "/_sim/devices/%00%ff"),
            ("GET", "/_sim/devices/" + "x" * 5000),
        ]:
            status, doc = await call(s, method, base + path, b'{"online": true}')
            assert status in (400, 404), (method, path, status, doc)
        for query in ("since=abc", "since=-1", "since=" + "9" * 400, "since=1e9", "since="):
            for path in ("/_sim/feed", "/_sim/deliveries"):
                status, doc = await call(s, "GET", f"{base}{path}?{query}")
                assert status in (200, 400), (path, query, status, doc)
                if status == 400:
                    assert doc.get("field") == "since" or "since" in doc["error"], doc
        status, doc = await call(s, "GET", base + "/_sim/devices?provider=nope&status=%ff")
        assert status < 500, doc
        status, doc = await call(s, "GET", base + "/_sim/stats")
        assert status == 200 and "providers" in doc


# -- the sender API -----------------------------------------------------------------------


@asynccontextmanager
async def running_sender(sim: SimulatorHandle, db: Path) -> AsyncIterator[str]:
    sender = Sender(from_simulator_dir(sim.state_dir, db))
    runner = web.AppRunner(make_app(sender), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


DEVICE_CASES: list[tuple[Any, str]] = [
    ({"provider": "apns", "token": "ab" * 32}, "user_id"),
    ({"user_id": 5, "provider": "apns", "token": "ab" * 32}, "user_id"),
    ({"user_id": "u", "provider": "apns"}, "token"),
    ({"user_id": "u", "provider": "apns", "token": 7}, "token"),
    ({"user_id": "u", "provider": "pager", "token": "t"}, "provider"),
    ({"user_id": "u", "provider": None, "token": "t"}, "provider"),
    ({"user_id": "u", "provider": "webpush"}, "subscription"),
    ({"user_id": "u", "provider": "webpush", "subscription": "x"}, "subscription"),
    (
        {"user_id": "u", "provider": "webpush", "subscription": {"endpoint": 5}},
        "subscription.endpoint",
    ),
    (
        {
            "user_id": "u",
            "provider": "webpush",
            "subscription": {"endpoint": "http://127.0.0.1/wp/x", "keys": {"p256dh": 1}},
        },
        "subscription.keys.p256dh",
    ),
    (
        {"user_id": "u", "provider": "apns", "token": "ab" * 32, "environment": "moon"},
        "environment",
    ),
    ({"user_id": "u", "provider": "apns", "token": "ab" * 32, "device_id": []}, "device_id"),
    ({"user_id": "u" * 100_000, "provider": "apns", "token": "ab" * 32}, "user_id"),
]

NOTIFICATION_CASES: list[tuple[Any, str]] = [
    ({}, "to"),
    ({"to": "alice"}, "to"),
    ({"to": {}}, "to"),
    ({"to": {"user": 5}}, "to.user"),
    ({"to": {"tokens": "x"}}, "to.tokens"),
    ({"to": {"tokens": [5]}}, "to.tokens[0]"),
    ({"to": {"tokens": [{"provider": "apns"}]}}, "to.tokens[0].token"),
    ({"to": {"tokens": [{"provider": "x", "token": "t"}]}}, "to.tokens[0].provider"),
    ({"to": {"topic": ["news"]}}, "to.topic"),
    ({"to": {"user": "u"}, "notification": "hi"}, "notification"),
    ({"to": {"user": "u"}, "notification": {"title": 5}}, "notification.title"),
    ({"to": {"user": "u"}, "data": {"k": 5}}, "data.k"),
    ({"to": {"user": "u"}, "data": [1]}, "data"),
    ({"to": {"user": "u"}, "priority": "urgent"}, "priority"),
    ({"to": {"user": "u"}, "ttl": -5}, "ttl"),
    ({"to": {"user": "u"}, "ttl": "soon"}, "ttl"),
    ({"to": {"user": "u"}, "ttl": 10**30}, "ttl"),
    ({"to": {"user": "u"}, "collapse_key": 5}, "collapse_key"),
    ({"to": {"user": "u"}, "apns": "x"}, "apns"),
    ({"to": {"user": "u"}, "apns": {"priority": "high"}}, "apns.priority"),
    ({"to": {"user": "u"}, "idempotency_key": 5}, "idempotency_key"),
]


async def test_sender_api_names_the_field(asim: SimulatorHandle, tmp_path: Path) -> None:
    async with running_sender(asim, tmp_path / "s.db") as url, aiohttp.ClientSession() as s:
        for path in (
            "/v1/devices",
            "/v1/notifications",
            "/v1/receipts",
            "/v1/topics/news/subscribers",
        ):
            for body in [b"", *BAD_BODIES]:
                status, doc = await call(s, "POST", url + path, body)
                assert status == 400 and isinstance(doc.get("field"), str), (path, body[:20], doc)
            for value in WRONG_VALUES:
                status, doc = await call(
                    s,
                    "POST",
                    url + path,
                    json.dumps(
                        {
                            k: value
                            for k in (
                                "user_id",
                                "provider",
                                "token",
                                "to",
                                "notification",
                                "notification_id",
                                "event",
                                "tokens",
                                "data",
                                "ttl",
                            )
                        }
                    ).encode(),
                )
                assert status == 400 and isinstance(doc.get("field"), str), (path, value, doc)
        for body, field in DEVICE_CASES:
            status, doc = await call(s, "POST", url + "/v1/devices", json.dumps(body).encode())
            assert status == 400 and doc.get("field") == field, (body, doc)
        for body, field in NOTIFICATION_CASES:
            body = {"notification": {"title": "t", "body": "b"}, **body}
            status, doc = await call(
                s, "POST", url + "/v1/notifications", json.dumps(body).encode()
            )
            assert status == 400 and doc.get("field") == field, (body, doc)
        for body, field in [
            ({"token": "t", "event": "delivered"}, "notification_id"),
            ({"notification_id": "n", "event": "delivered"}, "token"),
            ({"notification_id": "n", "token": "t", "event": "exploded"}, "event"),
        ]:
            status, doc = await call(s, "POST", url + "/v1/receipts", json.dumps(body).encode())
            assert status in (400, 404) and "error" in doc, (body, doc)
            if status == 400:
                assert doc.get("field") == field, (body, doc)
        for method, path in [
            ("GET", "/v1/notifications/nope"),
            ("GET", "/v1/notifications/%00%ff"),
            ("GET", "/v1/notifications/" + "x" * 5000),
            ("DELETE", "/v1/devices/nope"),
            ("DELETE", "/v1/devices/%ff"),
        ]:
            status, doc = await call(s, method, url + path)
            assert status == 404 and "error" in doc, (method, path, status, doc)
        for query in ("status=zombie", "user_id=", "status=%ff", "user_id=" + "u" * 5000):
            status, doc = await call(s, "GET", url + "/v1/devices?" + query)
            assert status in (200, 400), (query, status, doc)
        # and it still works
        dev = asim.mint("apns")[0]
        status, doc = await call(
            s,
            "POST",
            url + "/v1/devices",
            json.dumps({"user_id": "bob", "provider": "apns", "token": dev["token"]}).encode(),
        )
        assert status == 201 and doc["status"] == "active"
        status, doc = await call(
            s,
            "POST",
            url + "/v1/notifications",
            json.dumps(
                {"to": {"user": "bob"}, "notification": {"title": "t", "body": "b"}}
            ).encode(),
        )
        assert status == 202 and doc["targets"] == 1
        status, doc = await call(s, "GET", url + "/v1/health")
        assert status == 200 and doc["status"] == "ok"
