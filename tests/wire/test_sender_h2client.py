"""The sender's h2 client over real sockets: timeouts, large bodies, many streams at once."""

from __future__ import annotations

import asyncio

import pytest

from sender.transport.pool import H2Pool, client_ssl_context
from sender.transport.streams import ConnectionLost
from simulator.testing.handle import SimulatorHandle, apns_credentials, apns_provider_token


def _pool(sim: SimulatorHandle, origin_key: str) -> H2Pool:
    ctx = client_ssl_context(sim.endpoints["ca_file"])
    return H2Pool(sim.endpoints[origin_key], ctx, max_connections=1)


def test_a_hung_request_times_out_and_frees_its_stream(sim: SimulatorHandle) -> None:
    (dev,) = sim.mint("apns", 1)
    token = apns_provider_token(sim.state_dir)
    meta, _ = apns_credentials(sim.state_dir)
    headers = [
        (b"authorization", b"bearer " + token.encode()),
        (b"apns-topic", meta["bundle_id"].encode()),
        (b"apns-push-type", b"alert"),
    ]
    payload = b'{"aps":{"alert":"hi"}}'

    async def run() -> tuple[str, int, int]:
        pool = _pool(sim, "apns")
        try:
            first = await pool.request("POST", f"/3/device/{dev['token']}", headers, payload)
            await asyncio.to_thread(
                sim.control,
                "POST",
                "/_sim/faults",
                {"id": "h", "kind": "outage", "provider": "apns", "mode": "hang"},
            )
            with pytest.raises(ConnectionLost) as err:
                await pool.request(
                    "POST", f"/3/device/{dev['token']}", headers, payload, timeout=0.3
                )
            await asyncio.to_thread(sim.control, "DELETE", "/_sim/faults")
            (conn,) = pool.connections
            open_streams = len(conn.streams)
            again = await pool.request("POST", f"/3/device/{dev['token']}", headers, payload)
            return str(err.value), open_streams, first.status * 1000 + again.status
        finally:
            pool.close()

    message, open_streams, statuses = asyncio.run(run())
    assert "no response within 0.3s" in message
    assert open_streams == 0  # the timed-out stream was reset and its slot released
    assert statuses == 200_200  # delivered before the hang and after it


def test_bodies_over_one_frame_and_many_concurrent_streams(sim: SimulatorHandle) -> None:
    devs = sim.mint("webpush", 3)

    async def run() -> list[int]:
        pool = _pool(sim, "webpush")
        try:
            reqs = []
            for i, d in enumerate(devs * 40):
                path = "/" + d["subscription"]["endpoint"].split("/", 3)[3]
                # Over the 16 KiB frame size for some: sent through flow control, in pieces.
                body = b"x" * (40_000 if i % 10 == 0 else 100)
                reqs.append(
                    pool.request(
                        "POST",
                        path,
                        [(b"ttl", b"60"), (b"content-encoding", b"aes128gcm")],
                        body,
                    )
                )
            resps = await asyncio.gather(*reqs)
            return [r.status for r in resps]
        finally:
            pool.close()

    statuses = asyncio.run(run())
    assert len(statuses) == 120
    # Every request got an answer (the simulator judges the bodies, not the transport).
    assert all(100 <= s < 600 for s in statuses)
    assert any(s == 413 for s in statuses)  # the big bodies arrived whole and were measured
