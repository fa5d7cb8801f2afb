"""HTTP/2 stream limits as APNs and FCM apply them, over real sockets with h2 as the client.

- A limit binds once the client has acknowledged it (RFC 9113 section 6.5.3): streams a
  client opens in its first flight, before it could read the server's SETTINGS, are served
  (``strict_before_ack`` restores refusing them).
- APNs narrows a connection to one stream after a rejected notification and restores the
  full limit after the next accepted one; a client over an acknowledged limit gets GOAWAY
  "Maximum active streams violated for this endpoint."
- FCM allows 100 streams per connection; over that, GOAWAY exceeded_max_concurrent_streams.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import pytest
from h2.settings import SettingCodes

from simulator.testing import fcm
from simulator.testing.handle import (
    SimulatorHandle,
    apns_credentials,
    apns_provider_token,
    running_simulator,
)

MCS = SettingCodes.MAX_CONCURRENT_STREAMS
PROTOCOL_ERROR = 1
REFUSED_STREAM = 7
BODY = b'{"aps":{"alert":"burst"}}'


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("h2limits") / "state") as handle:
        yield handle


@dataclass
class Seen:
    statuses: dict[int, int] = field(default_factory=dict)
    resets: dict[int, int] = field(default_factory=dict)
    limits: list[int] = field(default_factory=list)  # MAX_CONCURRENT_STREAMS, SETTINGS by SETTINGS
    goaway: h2.events.ConnectionTerminated | None = None


class RawClient:
    """h2's client over a TLS socket; it opens streams whatever the server's limit says."""

    def __init__(self, url: str, ca_file: str) -> None:
        host, port = url.removeprefix("https://").rsplit(":", 1)
        self.authority = f"{host}:{port}"
        ctx = ssl.create_default_context(cafile=ca_file)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, int(port)), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.seen = Seen()

    def open(self, path: str, headers: list[tuple[str, str]], body: bytes | None) -> int:
        """Queue a request (``body`` None: the stream stays open); returns its stream id."""
        conn = self.conn
        conn.remote_settings[MCS] = 2**31 - 1  # ignore the server's limit: it is under test
        conn.remote_settings.acknowledge()
        sid = conn.get_next_available_stream_id()
        base = [(":method", "POST"), (":scheme", "https"), (":authority", self.authority)]
        conn.send_headers(sid, [*base, (":path", path), *headers])
        if body is not None:
            conn.send_data(sid, body, end_stream=True)
        return sid

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read_until(self, done: Callable[[], bool], timeout: float = 10) -> Seen:
        """Read (acknowledging SETTINGS as h2 does) until ``done()`` or GOAWAY."""
        deadline = time.monotonic() + timeout
        seen = self.seen
        while not done() and seen.goaway is None:
            assert time.monotonic() < deadline, f"timed out; so far {seen}"
            data = self.sock.recv(65536)
            if not data:
                break
            for ev in self.conn.receive_data(data):
                self._note(ev)
            self.flush()
        return seen

    def _note(self, ev: h2.events.Event) -> None:
        seen = self.seen
        if isinstance(ev, h2.events.ResponseReceived):
            seen.statuses[ev.stream_id] = int(dict(ev.headers)[b":status"])
        elif isinstance(ev, h2.events.StreamReset):
            seen.resets[ev.stream_id] = int(ev.error_code or 0)
        elif isinstance(ev, h2.events.RemoteSettingsChanged) and MCS in ev.changed_settings:
            seen.limits.append(ev.changed_settings[MCS].new_value)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            seen.goaway = ev

    def close(self) -> None:
        self.sock.close()


def apns_headers(sim: SimulatorHandle) -> list[tuple[str, str]]:
    meta, _ = apns_credentials(sim.state_dir)
    token = apns_provider_token(sim.state_dir)
    return [("authorization", f"bearer {token}"), ("apns-topic", meta["bundle_id"])]


def apns_client(sim: SimulatorHandle) -> RawClient:
    return RawClient(sim.endpoints["apns"], sim.endpoints["ca_file"])


def test_five_streams_before_reading_settings_are_all_answered(sim: SimulatorHandle) -> None:
    devs = sim.mint("apns", 5)
    c = apns_client(sim)
    hdrs = apns_headers(sim)
    sids = [c.open(f"/3/device/{d['token']}", hdrs, BODY) for d in devs]
    c.flush()  # everything before reading the server's SETTINGS (which say 1)
    seen = c.read_until(lambda: len(c.seen.statuses) + len(c.seen.resets) >= 5)
    c.close()
    assert seen.goaway is None and seen.resets == {}
    assert seen.statuses == dict.fromkeys(sids, 200)
    assert seen.limits[:2] == [1, 1000]  # the first SETTINGS, then the grant


def test_strict_before_ack_refuses_the_first_flight_over_the_initial_limit(
    sim: SimulatorHandle,
) -> None:
    devs = sim.mint("apns", 5)
    sim.control("PATCH", "/_sim/apns/config", {"strict_before_ack": True})
    try:
        assert sim.control("GET", "/_sim/apns/config")["production"]["strict_before_ack"] is True
        c = apns_client(sim)
        hdrs = apns_headers(sim)
        sids = [c.open(f"/3/device/{d['token']}", hdrs, BODY) for d in devs]
        c.flush()
        seen = c.read_until(lambda: len(c.seen.statuses) + len(c.seen.resets) >= 5)
        c.close()
    finally:
        sim.control("PATCH", "/_sim/apns/config", {"strict_before_ack": False})
    assert seen.goaway is None
    assert seen.statuses == {sids[0]: 200}
    assert seen.resets == dict.fromkeys(sids[1:], REFUSED_STREAM)


def test_a_rejection_narrows_the_limit_to_one_and_a_success_restores_it(
    sim: SimulatorHandle,
) -> None:
    live, dead = sim.mint("apns", 2)
    sim.control("DELETE", f"/_sim/devices/{dead['id']}")
    c = apns_client(sim)
    hdrs = apns_headers(sim)
    c.flush()
    c.read_until(lambda: len(c.seen.limits) >= 1)  # the first SETTINGS: 1
    steps = [(live, 200, 1000), (dead, 410, 1), (live, 200, 1000)]
    for dev, status, limit in steps:
        before = len(c.seen.limits)
        sid = c.open(f"/3/device/{dev['token']}", hdrs, BODY)
        c.flush()
        seen = c.read_until(lambda s=sid, n=before: s in c.seen.statuses and len(c.seen.limits) > n)
        assert seen.statuses[sid] == status
        assert seen.limits[before] == limit  # the next SETTINGS frame after this answer
    c.close()
    assert c.seen.limits == [1, 1000, 1, 1000] and c.seen.goaway is None


def test_a_stream_over_an_acknowledged_limit_gets_apns_goaway(sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    c = apns_client(sim)
    hdrs = apns_headers(sim)
    c.flush()
    c.read_until(lambda: len(c.seen.limits) >= 1)  # SETTINGS 1, acknowledged on the next write
    c.flush()
    first = c.open(f"/3/device/{dev['token']}", hdrs, None)  # open: its body never ends
    c.open(f"/3/device/{dev['token']}", hdrs, BODY)  # a second stream over the limit of 1
    c.flush()
    seen = c.read_until(lambda: False)
    c.close()
    assert seen.goaway is not None
    assert seen.goaway.error_code == PROTOCOL_ERROR
    assert seen.goaway.additional_data == b"Maximum active streams violated for this endpoint."
    assert seen.goaway.last_stream_id == first


def test_fcm_allows_100_streams_per_connection_and_goaway_beyond(sim: SimulatorHandle) -> None:
    token = fcm.access_token(sim)
    c = RawClient(sim.endpoints["fcm"], sim.endpoints["ca_file"])
    c.flush()
    c.read_until(lambda: len(c.seen.limits) >= 1)
    c.flush()  # the ACK: 100 is now acknowledged
    assert c.seen.limits == [100]
    hdrs = [("authorization", f"Bearer {token}"), ("content-type", "application/json")]
    path = f"/v1/projects/{fcm.PROJECT}/messages:send"
    sids = [c.open(path, hdrs, None) for _ in range(101)]  # 101 streams held open
    c.flush()
    seen = c.read_until(lambda: False)
    c.close()
    assert seen.goaway is not None
    assert seen.goaway.error_code == PROTOCOL_ERROR
    assert seen.goaway.additional_data == b"exceeded_max_concurrent_streams"
    assert seen.goaway.last_stream_id == sids[99]  # the 101st and any after it: unprocessed
    settings = sim.control("GET", "/_sim/fcm")
    assert settings["max_concurrent_streams"] == 100 and settings["strict_before_ack"] is False


def _unprocessed(sim: SimulatorHandle, token: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = sim.control("GET", "/_sim/timeline")["unprocessed"]
    return [e for e in events if e["token"] == token]


def test_refused_streams_are_in_the_timeline_until_they_are_sent_again(
    sim: SimulatorHandle,
) -> None:
    devs = sim.mint("apns", 3)
    sim.control("PATCH", "/_sim/apns/config", {"strict_before_ack": True})
    try:
        c = apns_client(sim)
        hdrs = apns_headers(sim)
        for d in devs:
            c.open(
                f"/3/device/{d['token']}",
                hdrs,
                b'{"aps":{},"correlation_id":"' + d["id"].encode() + b'"}',
            )
        c.flush()
        c.read_until(lambda: len(c.seen.statuses) + len(c.seen.resets) >= 3)
        c.close()
    finally:
        sim.control("PATCH", "/_sim/apns/config", {"strict_before_ack": False})
    refused = [_unprocessed(sim, d["token"]) for d in devs[1:]]
    assert [len(r) for r in refused] == [1, 1] and _unprocessed(sim, devs[0]["token"]) == []
    entry = refused[0][0]
    assert entry["reason"] == "refused_stream" and entry["provider"] == "apns"
    assert entry["correlation_id"] == devs[1]["id"] and entry["retried_at"] is None
    again = apns_client(sim)
    sid = again.open(f"/3/device/{devs[1]['token']}", hdrs, BODY)
    again.flush()
    again.read_until(lambda: sid in again.seen.statuses)
    again.close()
    assert _unprocessed(sim, devs[1]["token"])[0]["retried_at"] is not None
    assert _unprocessed(sim, devs[2]["token"])[0]["retried_at"] is None
    stats = sim.control("GET", "/_sim/stats")
    assert stats["unprocessed_not_retried"]["apns"] >= 1


def test_streams_above_a_goaway_last_stream_id_are_in_the_timeline(sim: SimulatorHandle) -> None:
    token = fcm.access_token(sim)
    dev = sim.mint("fcm")[0]
    c = RawClient(sim.endpoints["fcm"], sim.endpoints["ca_file"])
    c.flush()
    c.read_until(lambda: len(c.seen.limits) >= 1)
    c.flush()
    hdrs = [("authorization", f"Bearer {token}"), ("content-type", "application/json")]
    path = f"/v1/projects/{fcm.PROJECT}/messages:send"
    for _ in range(100):
        c.open(path, hdrs, None)
    body = b'{"message":{"token":"' + dev["token"].encode() + b'","data":{"correlation_id":"g-1"}}}'
    over = c.open(path, hdrs, body)
    c.flush()
    seen = c.read_until(lambda: False)
    c.close()
    assert seen.goaway is not None and seen.goaway.last_stream_id == over - 2
    (entry,) = _unprocessed(sim, dev["token"])
    assert (entry["reason"], entry["provider"], entry["stream"]) == ("goaway", "fcm", over)
    assert entry["correlation_id"] == "g-1"
    with fcm.client(sim) as http:
        assert fcm.send(http, token, {"token": dev["token"]}).status_code == 200
    assert _unprocessed(sim, dev["token"])[0]["retried_at"] is not None
