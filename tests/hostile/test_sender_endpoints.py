"""The sender POSTs Web Push only to allowed push-service origins: a subscription whose
endpoint is elsewhere (another scheme, host, port) is refused with a 400 naming it."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sender.api.app import make_app
from sender.config.simulator_dir import from_simulator_dir
from sender.service import Sender
from simulator.testing.handle import SimulatorHandle, running_simulator

pytestmark = pytest.mark.timeout(60)

KEYS = {"p256dh": "BAAA", "auth": "AAAA"}
ELSEWHERE = [
    "http://127.0.0.1:22/",  # another port of this machine
    "https://169.254.169.254/latest/meta-data",  # a cloud metadata service
    "http://fcm.googleapis.com/fcm/send/x",  # a known service, but not https
    "https://evil.example/fcm/send/x",
    "gopher://127.0.0.1:6379/_INFO",
]


def _post(url: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def post(url: str, body: Any) -> tuple[int, Any]:
    return await asyncio.to_thread(_post, url, body)


@asynccontextmanager
async def sender_api(sim: SimulatorHandle, db: Path) -> AsyncIterator[str]:
    runner = web.AppRunner(make_app(Sender(from_simulator_dir(sim.state_dir, db))))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def device(sub: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": "u", "provider": "webpush", "subscription": sub}


def notification(sub: dict[str, Any]) -> dict[str, Any]:
    return {"to": {"tokens": [{"provider": "webpush", "subscription": sub}]}, "data": {"k": "v"}}


async def test_endpoints_off_the_allow_list_are_refused(tmp_path: Path) -> None:
    with running_simulator(tmp_path / "state", tls=False) as sim:
        own = sim.mint("webpush")[0]["subscription"]
        async with sender_api(sim, tmp_path / "s.db") as base:
            for endpoint in ELSEWHERE:
                sub = {"endpoint": endpoint, "keys": KEYS}
                status, doc = await post(base + "/v1/devices", device(sub))
                print(f"\n[hostile] sender: register {endpoint!r}: {status} {doc.get('error')}")
                assert status == 400 and doc["field"] == "subscription.endpoint", doc
                status, doc = await post(base + "/v1/notifications", notification(sub))
                assert status == 400, doc
                assert doc["field"] == "to.tokens[0].subscription.endpoint", doc
            # the simulator's own push service, and the browsers', are fine
            assert (await post(base + "/v1/devices", device(own)))[0] == 201
            real = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": KEYS}
            assert (await post(base + "/v1/devices", device(real)))[0] == 201


@pytest.mark.parametrize(
    ("endpoint", "allowed"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", True),
        ("https://FCM.googleapis.com:443/fcm/send/abc", True),
        ("https://wns2-db5p.notify.windows.com/w/?token=x", True),
        ("https://notify.windows.com/w", False),  # the wildcard wants a label before it
        ("https://notify.windows.com.evil.example/w", False),
        ("https://evil.example/.notify.windows.com", False),
        ("https://fcm.googleapis.com:8443/fcm/send/abc", False),
        ("http://127.0.0.1:8080/wp/x", True),  # the configured loopback origin
        ("http://127.0.0.1:8081/wp/x", False),
        ("not a url", False),
    ],
)
def test_the_allow_list_matches_origins(endpoint: str, allowed: bool) -> None:
    from sender.config.settings import KNOWN_PUSH_SERVICES
    from sender.policy.endpoints import EndpointPolicy

    policy = EndpointPolicy((*KNOWN_PUSH_SERVICES, "http://127.0.0.1:8080"))
    assert (policy.refusal(endpoint) is None) is allowed


def test_a_config_file_sets_the_allow_list(tmp_path: Path) -> None:
    from sender.config.checks import ConfigError
    from sender.config.file import from_config_file

    with running_simulator(tmp_path / "state", tls=False) as sim:
        vapid = str(sim.state_dir / "webpush" / "vapid.json")
        conf = tmp_path / "sender.json"
        for origins, problem in [
            (["https://push.example.com", "https://*.push.example.net"], None),
            (["http://push.example.com"], "expected https"),
            (["https://push.example.com/path"], "no path"),
            ("https://push.example.com", "expected a list"),
        ]:
            conf.write_text(
                json.dumps({"webpush": {"vapid_file": vapid, "allowed_origins": origins}})
            )
            if problem is None:
                assert from_config_file(conf).webpush_origins == tuple(origins)
            else:
                with pytest.raises(ConfigError, match=problem):
                    from_config_file(conf)
