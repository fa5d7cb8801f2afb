"""HTTP/2 stream-limit conformance (RFC 9113 section 5.1.2) on the APNs listener.

APNs starts a connection at 1 concurrent stream. A client may open streams before it has
read the server's SETTINGS (h2load, nghttp2-based clients and others do); the RFC makes a
HEADERS frame over the advertised limit a *stream* error (REFUSED_STREAM or
PROTOCOL_ERROR), so the streams within the limit, and the connection, must survive. The
request is written in one go before anything is read, so the outcome is deterministic.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from simulator.testing.handle import (
    SimulatorHandle,
    apns_credentials,
    apns_provider_token,
    running_simulator,
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("h2streams") / "state") as handle:
        yield handle


def provider_token(state_dir: Path) -> tuple[str, str]:
    meta, _ = apns_credentials(state_dir)
    return apns_provider_token(state_dir), meta["bundle_id"]


def test_streams_over_the_initial_limit_are_refused_not_the_connection(
    sim: SimulatorHandle,
) -> None:
    token, topic = provider_token(sim.state_dir)
    dev = sim.mint("apns")[0]
    host, port = sim.endpoints["apns"].removeprefix("https://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=sim.endpoints["ca_file"])
    ctx.set_alpn_protocols(["h2"])
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", f"{host}:{port}"),
        (":path", f"/3/device/{dev['token']}"),
        ("authorization", f"bearer {token}"),
        ("apns-topic", topic),
    ]
    for stream_id in (1, 3, 5):  # 1 is within APNs' initial limit of 1; 3 and 5 are not
        conn.send_headers(stream_id, headers)
        conn.send_data(stream_id, b'{"aps":{"alert":"eager"}}', end_stream=True)

    statuses: dict[int, int] = {}
    resets: dict[int, int] = {}
    goaway: int | None = None
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(conn.data_to_send())  # everything before reading the server's SETTINGS
        deadline = time.monotonic() + 10
        while len(statuses) + len(resets) < 3 and goaway is None:
            assert time.monotonic() < deadline, "no answer for every stream"
            data = tls.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    statuses[ev.stream_id] = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.StreamReset):
                    resets[ev.stream_id] = int(ev.error_code or 0)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    goaway = int(ev.error_code or 0)
            out = conn.data_to_send()
            if out:
                tls.sendall(out)

    assert goaway is None, f"connection closed with GOAWAY error {goaway}"
    assert statuses.get(1) == 200
    # REFUSED_STREAM (7) tells the client the request was not processed and can be retried.
    assert all(resets.get(s) in (1, 7) or statuses.get(s) == 200 for s in (3, 5))
