"""h2load (nghttp2) against every provider endpoint, unchanged but for the URL and the CA.

h2load does not verify the server certificate, so TLS needs nothing from the state dir;
what it needs is a valid credential in a header. Each run must complete every request with
0 failed / 0 errored and every status 2xx, and the simulator's ground truth must agree.

h2load opens ``-m`` streams on a connection before it has read the server's SETTINGS, so
the APNs runs raise ``initial_streams`` (APNs starts a connection at 1 concurrent stream)
through ``PATCH /_sim/apns/config`` first, as a user of h2load has to. Request counts keep
each run to a few seconds; nothing here asserts on speed.
"""

from __future__ import annotations

import json
import re
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

from simulator.testing.fcm import access_token
from simulator.testing.handle import (
    SimulatorHandle,
    apns_credentials,
    apns_provider_token,
    running_simulator,
)

pytestmark = pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load is not on PATH")


@dataclass(frozen=True)
class H2loadResult:
    total: int
    started: int
    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    status_4xx: int
    status_5xx: int
    protocol: str
    raw: str

    def assert_all_2xx(self, n: int) -> None:
        assert (self.total, self.done, self.succeeded, self.status_2xx) == (n, n, n, n), self.raw
        assert (self.failed, self.errored, self.timeout) == (0, 0, 0), self.raw


def h2load(
    targets: list[str],
    headers: list[str],
    body: bytes,
    n: int,
    tmp: Path,
    clients: int = 4,
    streams: int = 100,
) -> H2loadResult:
    """Run h2load over ``targets`` (cycled, one URI per request) and parse its summary."""
    uris = tmp / "uris.txt"
    uris.write_text("".join(f"{t}\n" for t in targets))
    body_file = tmp / "body.bin"
    body_file.write_bytes(body)
    args = ["h2load", "-n", str(n), "-c", str(clients), "-m", str(streams), "-d", str(body_file)]
    for h in headers:
        args += ["-H", h]
    args += ["-i", str(uris)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    req = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    )
    codes = re.search(r"status codes: (\d+) 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    assert req and codes and proto, f"h2load output not understood:\n{out}"
    total, started, done, succeeded, failed, errored, timeout = (int(g) for g in req.groups())
    s2xx, s4xx, s5xx = (int(g) for g in codes.groups())
    return H2loadResult(
        total,
        started,
        done,
        succeeded,
        failed,
        errored,
        timeout,
        s2xx,
        s4xx,
        s5xx,
        protocol=proto.group(1),
        raw=out[-2000:],
    )


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("h2load") / "state") as handle:
        yield handle


def provider_token(state_dir: Path) -> tuple[str, dict[str, str]]:
    meta, _ = apns_credentials(state_dir)
    return apns_provider_token(state_dir), meta


def provider_stats(sim: SimulatorHandle, provider: str) -> dict[str, int]:
    stats: dict[str, int] = sim.control("GET", "/_sim/stats")["providers"].get(provider, {})
    return stats


def test_apns_20000_requests_all_succeed(sim: SimulatorHandle, tmp_path: Path) -> None:
    token, meta = provider_token(sim.state_dir)
    before = provider_stats(sim, "apns").get("delivered", 0)
    # 100 device tokens, 200 notifications each: inside APNs' per-device burst.
    devices = sim.mint("apns", 100)
    sim.control("PATCH", "/_sim/apns/config", {"initial_streams": 1000})
    try:
        res = h2load(
            [f"{sim.endpoints['apns']}/3/device/{d['token']}" for d in devices],
            [
                f"authorization: bearer {token}",
                f"apns-topic: {meta['bundle_id']}",
                "apns-push-type: alert",
                "apns-expiration: 0",
            ],
            b'{"aps":{"alert":{"title":"Hello","body":"from h2load"}}}',
            20_000,
            tmp_path,
        )
    finally:
        sim.control("PATCH", "/_sim/apns/config", {"initial_streams": 1})
    assert res.protocol == "h2"
    res.assert_all_2xx(20_000)
    assert provider_stats(sim, "apns")["delivered"] - before == 20_000
    inbox = sim.control("GET", f"/_sim/devices/{devices[7]['id']}/inbox")["messages"]
    assert len(inbox) == 200
    assert inbox[0]["payload"]["aps"]["alert"]["body"] == "from h2load"


def test_apns_without_provider_token_is_403_for_every_request(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    """The same load without a JWT: every request answered (none lost), every one 403."""
    _, meta = provider_token(sim.state_dir)
    dev = sim.mint("apns")[0]
    res = h2load(
        [f"{sim.endpoints['apns']}/3/device/{dev['token']}"],
        [f"apns-topic: {meta['bundle_id']}"],
        b'{"aps":{"alert":"no token"}}',
        200,
        tmp_path,
        clients=2,
        streams=1,
    )
    assert (res.done, res.status_4xx, res.errored) == (200, 200, 0), res.raw
    assert sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"] == []


def test_apns_default_initial_stream_limit_with_one_stream_per_connection(
    sim: SimulatorHandle, tmp_path: Path
) -> None:
    """With APNs' default start of 1 concurrent stream, h2load -m 1 needs no set-up at all."""
    token, meta = provider_token(sim.state_dir)
    devices = sim.mint("apns", 10)
    res = h2load(
        [f"{sim.endpoints['apns']}/3/device/{d['token']}" for d in devices],
        [f"authorization: bearer {token}", f"apns-topic: {meta['bundle_id']}"],
        b'{"aps":{"alert":"one at a time"}}',
        1_000,
        tmp_path,
        clients=4,
        streams=1,
    )
    res.assert_all_2xx(1_000)


def test_fcm_messages_send_with_oauth_access_token(sim: SimulatorHandle, tmp_path: Path) -> None:
    token = access_token(sim)
    before = provider_stats(sim, "fcm").get("delivered", 0)
    dev = sim.mint("fcm")[0]
    # h2load replays one body, so one device gets every message: lift the per-device quota
    # (240/min) for the run, as a load test against real FCM would use many devices.
    big = 1_000_000_000
    sim.control(
        "POST", "/_sim/fcm/config", {"quota": {"device_per_minute": big, "device_per_hour": big}}
    )
    message: dict[str, Any] = {
        "message": {
            "token": dev["token"],
            "notification": {"title": "Hello", "body": "from h2load"},
            "data": {"correlation_id": "h2load-fcm"},
            "android": {"priority": "HIGH", "ttl": "3600s"},
        }
    }
    project = sim.state_dir / "fcm" / "service-account.json"
    project_id = json.loads(project.read_text())["project_id"]
    res = h2load(
        [f"{sim.endpoints['fcm']}/v1/projects/{project_id}/messages:send"],
        [f"authorization: Bearer {token}", "content-type: application/json"],
        json.dumps(message).encode(),
        5_000,
        tmp_path,
    )
    assert res.protocol == "h2"
    res.assert_all_2xx(5_000)
    assert provider_stats(sim, "fcm")["delivered"] - before == 5_000
    inbox = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"]
    assert inbox[-1]["correlation_id"] == "h2load-fcm"  # (an inbox keeps the last 1,000)


def test_webpush_over_h2c(tmp_path: Path) -> None:
    """Web Push without TLS (h2c prior knowledge): a VAPID-signed, pre-encrypted body."""
    with running_simulator(tmp_path / "state", tls=False) as plain:
        vapid = json.loads((plain.state_dir / "webpush" / "vapid.json").read_text())
        dev = plain.mint("webpush", application_server_key=vapid["public_key"])[0]
        sub = dev["subscription"]
        assert sub["endpoint"].startswith("http://")
        payload = json.dumps({"title": "Hello", "correlation_id": "h2load-wp"}).encode()
        encoded = WebPusher(sub).encode(payload, content_encoding="aes128gcm")
        signer = Vapid02.from_pem(vapid["private_key"].encode())
        auth = signer.sign(
            {
                "aud": plain.endpoints["webpush"],
                "sub": vapid["subject"],
                "exp": int(time.time()) + 3600,
            }
        )["Authorization"]
        res = h2load(
            [sub["endpoint"]],
            [
                f"authorization: {auth}",
                "content-encoding: aes128gcm",
                "ttl: 300",
                "urgency: normal",
            ],
            encoded["body"],
            3_000,
            tmp_path,
        )
        assert res.protocol == "h2c"
        res.assert_all_2xx(3_000)
        assert provider_stats(plain, "webpush")["delivered"] == 3_000
        inbox = plain.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"]
        assert inbox[-1]["payload"] == {"title": "Hello", "correlation_id": "h2load-wp"}
