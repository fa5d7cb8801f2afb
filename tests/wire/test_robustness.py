"""Malformed bytes on the provider ports, over real sockets (TLS and plain): garbage and
truncated prefaces, invalid HTTP/2 frames, broken HTTP/1.1, TLS handshake garbage, many
dropped connections. After each, the same server must still answer a normal APNs request
with 200, and nothing may have been logged as a server error."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import h2.connection
import h2.events
import httpx
import pytest

from simulator.testing.handle import SimulatorHandle, apns_provider_token, running_simulator

# every test: bounded in time, and the servers must log no unexpected error
pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_server_errors")]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TOPIC = "com.example.pushsim"


@pytest.fixture(scope="module", params=["tls", "plain"])
def rsim(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimulatorHandle]:
    state = tmp_path_factory.mktemp("robust") / "state"
    with running_simulator(state, tls=request.param == "tls") as handle:
        yield handle


# -- helpers ------------------------------------------------------------------------------


def frame(
    ftype: int, flags: int, stream_id: int, payload: bytes, length: int | None = None
) -> bytes:
    n = len(payload) if length is None else length
    return struct.pack(">I", n)[1:] + bytes([ftype, flags]) + struct.pack(">I", stream_id) + payload


def connect(
    sim: SimulatorHandle,
    listener: str = "apns",
    alpn: list[str] | None = None,
    tls: bool | None = None,
) -> socket.socket:
    parts = urlsplit(sim.endpoints[listener])
    raw = socket.create_connection((parts.hostname, parts.port), timeout=5)
    if parts.scheme == "https" and tls is not False:
        ctx = ssl.create_default_context(cafile=sim.endpoints["ca_file"])
        if alpn != []:  # [] offers no ALPN: the listener sniffs for the h2 preface
            ctx.set_alpn_protocols(alpn or ["h2"])
        return ctx.wrap_socket(raw, server_hostname=parts.hostname)
    return raw


def exchange(
    sock: socket.socket, data: bytes, wait: float = 1.0, until: bytes | None = None
) -> tuple[bytes, bool]:
    """Send ``data``; read until the server closes, ``until`` arrives or ``wait`` passes.
    Returns (bytes read, closed)."""
    try:
        sock.sendall(data)
    except OSError:
        return b"", True
    out = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return out, False
        except (ssl.SSLError, OSError):
            return out, True
        if not chunk:
            return out, True
        out += chunk
        if until is not None and until in out:
            return out, False
    return out, False


def goaway_code(data: bytes) -> int | None:
    """The error code of the first GOAWAY frame in a server's byte stream."""
    i = 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i : i + 3], "big")
        ftype = data[i + 3]
        if ftype == 0x7 and i + 9 + 8 <= len(data):
            return int.from_bytes(data[i + 13 : i + 17], "big")
        i += 9 + n
    return None


def apns_post(sim: SimulatorHandle, body: bytes = b'{"aps":{"alert":"hi"}}') -> httpx.Response:
    dev = sim.mint("apns")[0]
    base = sim.endpoints["apns"]
    if base.startswith("https"):
        c = httpx.Client(
            http2=True, verify=ssl.create_default_context(cafile=sim.endpoints["ca_file"])
        )
    else:
        c = httpx.Client(http1=False, http2=True)
    with c:
        return c.post(
            f"{base}/3/device/{dev['token']}",
            content=body,
            headers={
                "authorization": f"bearer {apns_provider_token(sim.state_dir)}",
                "apns-topic": TOPIC,
                "apns-push-type": "alert",
            },
            timeout=10,
        )


def assert_still_serving(sim: SimulatorHandle) -> None:
    r = apns_post(sim)
    assert r.status_code == 200 and r.http_version == "HTTP/2" and "apns-id" in r.headers


def h2_client(sim: SimulatorHandle) -> tuple[socket.socket, h2.connection.H2Connection]:
    sock = connect(sim)
    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def h2_response(sock: socket.socket, conn: h2.connection.H2Connection, stream_id: int) -> int:
    """Read until ``stream_id`` has its response headers; return the :status."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sock.settimeout(5)
        data = sock.recv(65536)
        assert data, "server closed the connection"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == stream_id:
                return int(dict(ev.headers)[b":status"])
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    raise AssertionError("no response")


def request_headers(sim: SimulatorHandle, token: str) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", f"/3/device/{token}"),
        ("authorization", f"bearer {apns_provider_token(sim.state_dir)}"),
        ("apns-topic", TOPIC),
    ]


# -- the preface and raw HTTP/2 frames -------------------------------------------------------

SETTINGS_EMPTY = frame(0x4, 0, 0, b"")

H2_GARBAGE: dict[str, tuple[bytes, int | None]] = {
    # name: (bytes after the preface, expected GOAWAY error code or None for "any/none").
    # h2 answers undecodable HPACK with PROTOCOL_ERROR where RFC 9113 says COMPRESSION_ERROR.
    "frame over max size": (frame(0x0, 0, 1, b"x" * 20000), 0x6),  # FRAME_SIZE_ERROR
    "declared huge length, short body": (frame(0x0, 0, 1, b"x", length=0xFFFFFF), None),
    "headers on stream 0": (frame(0x1, 0x5, 0, b"\x82"), 0x1),  # PROTOCOL_ERROR
    "data on an idle stream": (frame(0x0, 0x1, 1, b"hello"), 0x1),
    "invalid hpack": (frame(0x1, 0x5, 1, b"\xff\xff\xff\xff\xff\xff"), 0x1),  # COMPRESSION_ERROR
    "hpack index out of range": (frame(0x1, 0x5, 1, b"\xbf\xff\x7f"), 0x1),
    "even stream id": (frame(0x1, 0x5, 2, b"\x83\x87\x84"), 0x1),
    "settings with bad length": (frame(0x4, 0, 0, b"\x00\x04\x00"), 0x6),
    "settings window too big": (frame(0x4, 0, 0, b"\x00\x04\xff\xff\xff\xff"), 0x3),
    "settings on a stream": (frame(0x4, 0, 1, b""), 0x1),
    "ping of wrong length": (frame(0x6, 0, 0, b"\x00" * 3), 0x6),
    "window update of zero": (frame(0x8, 0, 0, b"\x00\x00\x00\x00"), 0x1),
    "rst_stream on idle stream": (frame(0x3, 0, 5, b"\x00\x00\x00\x08"), 0x1),
    "continuation without headers": (frame(0x9, 0x4, 1, b"\x82"), 0x1),
    "push_promise from a client": (frame(0x5, 0x4, 1, b"\x00\x00\x00\x02\x82"), 0x1),
    "goaway with short payload": (frame(0x7, 0, 0, b"\x00"), None),
    "random junk": (bytes(range(256)) * 4, None),
}


@pytest.mark.parametrize("name", list(H2_GARBAGE))
def test_invalid_h2_frames_end_the_connection_cleanly(rsim: SimulatorHandle, name: str) -> None:
    payload, code = H2_GARBAGE[name]
    with connect(rsim) as sock:
        data, _closed = exchange(sock, PREFACE + SETTINGS_EMPTY + payload, wait=0.5)
    if code is not None:
        assert goaway_code(data) == code, name
    assert_still_serving(rsim)


def test_garbage_instead_of_the_preface(rsim: SimulatorHandle) -> None:
    # Not the h2 preface: the listener treats it as HTTP/1.1 and answers 400, then closes.
    with connect(rsim, alpn=["http/1.1"]) as sock:
        data, closed = exchange(sock, b"\x00\x01\x02garbage\r\n\r\n" * 3)
    assert data.startswith(b"HTTP/1.1 400") and closed
    assert_still_serving(rsim)


def test_truncated_preface_then_disconnect(rsim: SimulatorHandle) -> None:
    for cut in (1, 10, len(PREFACE) - 1):
        with connect(rsim, alpn=[]) as sock:
            data, closed = exchange(sock, PREFACE[:cut], wait=0.2)
        assert not closed and data == b""  # still waiting for the rest
    assert_still_serving(rsim)


def test_unknown_frame_types_are_ignored(rsim: SimulatorHandle) -> None:
    dev = rsim.mint("apns")[0]
    sock, conn = h2_client(rsim)
    with sock:
        for ftype in (0x0B, 0x42, 0xFA, 0xFF):
            sock.sendall(frame(ftype, 0xFF, 0, b"unknown" * 10))
            sock.sendall(frame(ftype, 0, 7, b""))
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers(rsim, dev["token"]))
        conn.send_data(sid, b'{"aps":{}}', end_stream=True)
        sock.sendall(conn.data_to_send())
        assert h2_response(sock, conn, sid) == 200


def test_half_a_request_then_disconnect(rsim: SimulatorHandle) -> None:
    dev = rsim.mint("apns")[0]
    for _ in range(5):
        sock, conn = h2_client(rsim)
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers(rsim, dev["token"]))
        conn.send_data(sid, b'{"aps":')  # no END_STREAM
        sock.sendall(conn.data_to_send())
        sock.close()
    with connect(rsim, alpn=["http/1.1"]) as sock:
        sock.sendall(b"POST /3/device/x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n{")
    assert_still_serving(rsim)
    assert rsim.mint("apns")  # control API alive too


def test_huge_header_list(rsim: SimulatorHandle) -> None:
    dev = rsim.mint("apns")[0]
    sock, conn = h2_client(rsim)
    with sock:
        headers = request_headers(rsim, dev["token"])
        headers += [(f"x-filler-{i}", "v" * 1000) for i in range(100)]  # ~100 KB
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, headers, end_stream=True)
        data, _closed = exchange(sock, conn.data_to_send(), wait=1.0)
    # h2 refuses header lists over the advertised 64 KiB: the stream or connection ends,
    # the server does not crash.
    assert data
    assert_still_serving(rsim)


# -- HTTP/1.1 on the provider port ---------------------------------------------------------

H11_GARBAGE: dict[str, tuple[bytes, bytes]] = {
    "invalid request line": (b"GET\r\n\r\n", b"HTTP/1.1 400"),
    "request line with spaces": (b"POST / / / HTTP/1.1\r\nhost: a\r\n\r\n", b"HTTP/1.1 400"),
    # h11 takes any HTTP/1.x-looking version; the APNs core answers the path.
    "bad version": (b"GET / HTTP/9.9\r\nhost: a\r\n\r\n", b"HTTP/1.1 404"),
    "bad content-length": (
        b"POST /3/device/ab HTTP/1.1\r\nhost: a\r\ncontent-length: ten\r\n\r\n",
        b"HTTP/1.1 400",
    ),
    "negative content-length": (
        b"POST /3/device/ab HTTP/1.1\r\nhost: a\r\ncontent-length: -5\r\n\r\n",
        b"HTTP/1.1 400",
    ),
    "two content-lengths": (
        b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
        b"HTTP/1.1 400",
    ),
    "chunked garbage": (
        b"POST /3/device/ab HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 400",
    ),
    "header without colon": (b"GET / HTTP/1.1\r\nhost: a\r\nbroken\r\n\r\n", b"HTTP/1.1 400"),
    "missing host": (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 400"),
    "header block too large": (
        b"GET / HTTP/1.1\r\nhost: a\r\nx: " + b"a" * (1 << 20) + b"\r\n\r\n",
        b"HTTP/1.1 431",
    ),
}


@pytest.mark.parametrize("name", list(H11_GARBAGE))
def test_broken_http11(rsim: SimulatorHandle, name: str) -> None:
    payload, expect = H11_GARBAGE[name]
    with connect(rsim, alpn=["http/1.1"]) as sock:
        data, closed = exchange(sock, payload, until=b"\r\n\r\n")
    if name == "header block too large" and closed and not data:
        # The 431 is written and the connection closed while the client is still sending:
        # the unread bytes make the kernel reset the connection, which can discard the 431.
        pass
    else:
        assert data.startswith(expect), (name, data[:200])
    assert_still_serving(rsim)


def test_ten_megabyte_body_gets_payload_too_large(rsim: SimulatorHandle) -> None:
    r = apns_post(rsim, body=b"x" * (10 << 20))
    assert r.status_code == 413 and r.json()["reason"] == "PayloadTooLarge"
    dev = rsim.mint("apns")[0]
    with connect(rsim, alpn=["http/1.1"]) as sock:
        body = b"y" * (10 << 20)
        head = (
            f"POST /3/device/{dev['token']} HTTP/1.1\r\nhost: a\r\napns-topic: {TOPIC}\r\n"
            f"authorization: bearer {apns_provider_token(rsim.state_dir)}\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        data, _closed = exchange(sock, head + body, wait=10.0, until=b"PayloadTooLarge")
    assert data.startswith(b"HTTP/1.1 413") and b"PayloadTooLarge" in data
    assert_still_serving(rsim)


# -- TLS and connection churn --------------------------------------------------------------


def test_tls_handshake_garbage(rsim: SimulatorHandle) -> None:
    if not rsim.endpoints["apns"].startswith("https"):
        pytest.skip("plain listener")
    for junk in (
        b"\x16\x03\x01\x00\x05hello",  # a TLS record too short to be a ClientHello
        b"\x16\x03\x01\xff\xff" + b"\x00" * 100,  # declares more than it sends, then hangs up
        b"GET / HTTP/1.1\r\nhost: a\r\n\r\n",  # plain HTTP on a TLS port
        bytes(range(256)),
    ):
        with connect(rsim, tls=False) as sock:
            exchange(sock, junk, wait=0.3)
    # A handshake abandoned halfway: ClientHello sent, then disconnect.
    for _ in range(3):
        ctx = ssl.create_default_context(cafile=rsim.endpoints["ca_file"])
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        with connect(rsim, tls=False) as sock:
            sock.sendall(outgoing.read())
    assert_still_serving(rsim)


def _listener_connections(sim: SimulatorHandle) -> int:
    return sim.call(lambda: len(sim.sim.listeners["apns"].connections))


def test_many_connections_opened_and_dropped(rsim: SimulatorHandle) -> None:
    parts = urlsplit(rsim.endpoints["apns"])
    for i in range(150):
        s = socket.create_connection((parts.hostname, parts.port), timeout=5)
        if i % 3 == 0:  # a reset instead of a FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif i % 3 == 1:
            try:
                s.sendall(PREFACE[:5])
            except OSError:
                pass
        s.close()
    assert_still_serving(rsim)
    deadline = time.monotonic() + 10
    while _listener_connections(rsim) > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _listener_connections(rsim) == 0  # every dropped connection was forgotten
