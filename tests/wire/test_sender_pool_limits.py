"""The sender's connection pool under the providers' stream limits, over real sockets.

FCM allows 100 streams a connection (GOAWAY beyond): with more requests in hand the pool
opens more connections. APNs narrows a connection to one stream after every rejection:
the pool waits for the limit to come back rather than widening, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import json

from sender.transport.pool import H2Pool, client_ssl_context
from simulator.testing import fcm
from simulator.testing.handle import SimulatorHandle, apns_credentials, apns_provider_token


def _pool(sim: SimulatorHandle, origin_key: str) -> H2Pool:
    return H2Pool(
        sim.endpoints[origin_key], client_ssl_context(sim.endpoints["ca_file"]), max_connections=1
    )


def test_fcm_sends_past_100_in_flight_open_more_connections(sim: SimulatorHandle) -> None:
    token = fcm.access_token(sim)
    devs = sim.mint("fcm", 250)
    headers = [(b"authorization", b"Bearer " + token.encode())]
    path = f"/v1/projects/{fcm.PROJECT}/messages:send"

    async def run() -> tuple[list[int], int, int]:
        pool = _pool(sim, "fcm")
        try:
            await pool.request("POST", path, headers, _fcm_body(devs[0]["token"]))  # learns 100
            sends = [pool.request("POST", path, headers, _fcm_body(d["token"])) for d in devs]
            responses = await asyncio.gather(*sends)
            return [r.status for r in responses], pool.opened, pool.peer_limit
        finally:
            pool.close()

    # every answer takes a moment, so the 250 are in flight together
    slow = {"id": "slow-fcm", "kind": "latency", "provider": "fcm"}
    sim.control("POST", "/_sim/faults", {**slow, "distribution": "fixed", "delay": "300ms"})
    try:
        statuses, opened, limit = asyncio.run(run())
    finally:
        sim.control("DELETE", "/_sim/faults/slow-fcm")
    assert statuses == [200] * 250
    assert limit == 100 and opened == 3  # 250 in flight at 100 a connection
    stats = sim.control("GET", "/_sim/stats")
    assert stats["unprocessed_streams"]["fcm"] == 0  # no stream over the limit, no GOAWAY


def _fcm_body(token: str) -> bytes:
    return json.dumps({"message": {"token": token, "data": {"n": "1"}}}).encode()


def test_apns_narrowing_after_rejections_costs_nothing(sim: SimulatorHandle) -> None:
    devs = sim.mint("apns", 60)
    dead = devs[::5]
    for d in dead:
        sim.control("DELETE", f"/_sim/devices/{d['id']}")
    meta, _ = apns_credentials(sim.state_dir)
    headers = [
        (b"authorization", b"bearer " + apns_provider_token(sim.state_dir).encode()),
        (b"apns-topic", meta["bundle_id"].encode()),
    ]
    payload = b'{"aps":{"alert":"hi"}}'

    async def run() -> tuple[list[int], int]:
        pool = _pool(sim, "apns")
        try:
            sends = [
                pool.request("POST", f"/3/device/{d['token']}", headers, payload, timeout=20)
                for d in devs * 4
            ]
            responses = await asyncio.gather(*sends)
            return [r.status for r in responses], pool.opened
        finally:
            pool.close()

    statuses, opened = asyncio.run(run())
    dead_tokens = {d["token"] for d in dead}
    assert statuses == [410 if d["token"] in dead_tokens else 200 for d in devs * 4]
    assert opened == 1  # one connection: narrowed to 1, back to 1000, never over
    stats = sim.control("GET", "/_sim/stats")
    assert stats["unprocessed_not_retried"]["apns"] == 0
