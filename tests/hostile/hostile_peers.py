"""What the hostile-peer tests share: a simulator in a child process of its own, a probe
that measures a normal APNs request while an attack runs, and raw-byte tools for attacks.

The simulator under attack runs as ``pushsim simulator`` in a child process
(:func:`simulator.testing.handle.simulator_process`), so its resident memory, read from
``/proc/<pid>/status``, is its own. An attack runs in a thread of the test (sending bytes
built beforehand, so it spends its time in socket calls, not holding the GIL) while the
main thread sends one normal APNs request every few tens of milliseconds on a connection
opened before the attack, and samples the simulator's RSS.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h2.connection
import h2.events
import h2.exceptions
import hpack

from simulator.testing.handle import apns_provider_token

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TOPIC = "com.example.pushsim"
PAYLOAD = b'{"aps":{"alert":"hi"}}'
MB = 1 << 20

# frame types (RFC 9113 section 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0x0,
    0x1,
    0x2,
    0x3,
    0x4,
    0x6,
    0x7,
    0x8,
    0x9,
)
END_STREAM, END_HEADERS = 0x1, 0x4
ENHANCE_YOUR_CALM, COMPRESSION_ERROR = 0xB, 0x9


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([ftype, flags])
        + struct.pack(">I", stream_id)
        + payload
    )


def client_preface() -> bytes:
    """The client's preface and an empty SETTINGS frame."""
    return PREFACE + frame(SETTINGS, 0, 0)


def addr(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def connect(url: str, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(addr(url), timeout=timeout)


def read_some(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """Read for up to ``seconds``; (bytes read, whether the server closed)."""
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            continue
        except OSError:
            return out, True
        if not chunk:
            return out, True
        out += chunk
    return out, False


def goaway_code(data: bytes) -> int | None:
    """The error code of the first GOAWAY frame in a server's byte stream."""
    i = 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i : i + 3], "big")
        if data[i + 3] == GOAWAY and i + 17 <= len(data):
            return int.from_bytes(data[i + 13 : i + 17], "big")
        i += 9 + n
    return None


def rst_codes(data: bytes) -> list[int]:
    """The error codes of the RST_STREAM frames in a server's byte stream."""
    out, i = [], 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i : i + 3], "big")
        if data[i + 3] == RST_STREAM and i + 13 <= len(data):
            out.append(int.from_bytes(data[i + 9 : i + 13], "big"))
        i += 9 + n
    return out


def statuses(data: bytes) -> int:
    """How many HEADERS frames (responses) a server's byte stream holds."""
    count, i = 0, 0
    while i + 9 <= len(data):
        n = int.from_bytes(data[i : i + 3], "big")
        count += data[i + 3] == HEADERS
        i += 9 + n
    return count


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@dataclass
class Target:
    """The simulator under attack: its process, endpoints and minted credentials."""

    pid: int
    endpoints: dict[str, str]
    state_dir: Path
    log: Path
    apns_token: str = ""

    @property
    def apns(self) -> str:
        return self.endpoints["apns"]

    def control(self, method: str, path: str, body: Any = None) -> Any:
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoints["control"] + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def mint(self, provider: str, count: int = 1) -> list[dict[str, Any]]:
        devices: list[dict[str, Any]] = self.control(
            "POST", "/_sim/devices", {"provider": provider, "count": count}
        )["devices"]
        return devices

    def apns_headers(self, token: str) -> list[tuple[str, str]]:
        if not self.apns_token:  # one provider token for the whole test, as a sender keeps it
            self.apns_token = apns_provider_token(self.state_dir)
        return [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", f"/3/device/{token}"),
            (":authority", "localhost"),
            ("authorization", f"bearer {self.apns_token}"),
            ("apns-topic", TOPIC),
            ("apns-push-type", "alert"),
        ]

    def errors_logged(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [ln for ln in text.splitlines() if " ERROR " in ln or "Traceback" in ln]


class Probe:
    """A normal APNs sender: one h2c connection, one request at a time."""

    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        self.target = target
        self.token = target.mint("apns")[0]["token"]
        self.sock = connect(target.apns, timeout)
        self.conn = h2.connection.H2Connection()
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.timeout = timeout

    def send(self) -> tuple[int, float]:
        """One push: (status, seconds until the answer); status 0 when none came."""
        conn = self.conn
        t0 = time.monotonic()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, self.target.apns_headers(self.token))
        conn.send_data(sid, PAYLOAD, end_stream=True)
        self.sock.sendall(conn.data_to_send())
        status = 0
        deadline = t0 + self.timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                break
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    out = conn.data_to_send()
                    if out:
                        self.sock.sendall(out)
                    return status, time.monotonic() - t0
            out = conn.data_to_send()
            if out:
                self.sock.sendall(out)
        return status, time.monotonic() - t0

    def close(self) -> None:
        self.sock.close()


@dataclass
class Measure:
    """What a probe saw while an attack ran, and after."""

    baseline_kb: int
    peak_kb: int = 0
    during: list[tuple[int, float]] = field(default_factory=list)
    after: tuple[int, float] = (0, 0.0)
    attack_result: Any = None
    attack_error: BaseException | None = None

    @property
    def growth_mb(self) -> float:
        return (self.peak_kb - self.baseline_kb) / 1024

    @property
    def worst_s(self) -> float:
        return max((s for _st, s in self.during), default=0.0)

    def summary(self, name: str) -> str:
        lat = sorted(s for _st, s in self.during)
        p50 = lat[len(lat) // 2] if lat else 0.0
        codes = sorted({st for st, _s in self.during})
        return (
            f"[hostile] {name}: rss growth {self.growth_mb:.1f} MB, probe during: "
            f"n={len(lat)} p50={p50 * 1000:.0f} ms worst={self.worst_s * 1000:.0f} ms "
            f"statuses={codes}; after: {self.after[0]} in {self.after[1] * 1000:.0f} ms"
        )


def under_attack(
    target: Target,
    attack: Callable[[threading.Event], Any],
    *,
    seconds: float,
    name: str,
    every: float = 0.05,
    settle: float = 0.3,
) -> Measure:
    """Run ``attack`` in a thread for at most ``seconds`` (it gets a stop event), probing
    the simulator meanwhile; then one probe on a new connection after it."""
    probe = Probe(target)
    probe.send()  # the connection is warm: token accepted, streams opened up
    m = Measure(rss_kb(target.pid))
    stop = threading.Event()

    def run() -> None:
        try:
            m.attack_result = attack(stop)
        except BaseException as exc:  # reported by the test
            m.attack_error = exc

    def sample() -> None:  # the peak, however briefly it lasts
        while not stop.wait(0.01):
            with contextlib.suppress(OSError):
                m.peak_kb = max(m.peak_kb, rss_kb(target.pid))

    thread = threading.Thread(target=run, daemon=True)
    sampler = threading.Thread(target=sample, daemon=True)
    thread.start()
    sampler.start()
    deadline = time.monotonic() + seconds
    try:
        while thread.is_alive() and time.monotonic() < deadline:
            m.during.append(probe.send())
            time.sleep(every)
    finally:
        stop.set()
        thread.join(timeout=10)
        sampler.join(timeout=1)
        probe.close()
    m.peak_kb = max(m.peak_kb, rss_kb(target.pid))
    time.sleep(settle)
    after = Probe(target)
    try:
        m.after = after.send()
    finally:
        after.close()
    print("\n" + m.summary(name))
    return m


@contextlib.contextmanager
def sockets(n: int) -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    try:
        yield held
    finally:
        for s in held:
            with contextlib.suppress(OSError):
                s.close()


def encoder_block(headers: list[tuple[str, str]], huffman: bool = True) -> bytes:
    enc = hpack.Encoder()
    block: bytes = enc.encode(headers, huffman=huffman)
    return block


def send_then_hold(sock: socket.socket, data: bytes, stop: threading.Event, limit_s: float) -> int:
    """Send ``data`` (in 64 KiB slices) and hold the connection open, never reading, until
    ``stop`` or ``limit_s``; the bytes the simulator took."""
    sent = 0
    deadline = time.monotonic() + limit_s
    sock.settimeout(2.0)
    view = memoryview(data)
    while sent < len(view) and not stop.is_set() and time.monotonic() < deadline:
        try:
            sock.sendall(view[sent : sent + 65536])
        except OSError:  # a timeout too: the simulator stopped reading (or closed)
            break
        sent += min(65536, len(view) - sent)
    stop.wait(max(0.0, deadline - time.monotonic()))
    return sent


class H2Peer:
    """An h2c client that follows flow control (the attacks that need a well-formed peer)."""

    def __init__(self, url: str) -> None:
        self.sock = connect(url)
        self.conn = h2.connection.H2Connection()
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.statuses: dict[int, int] = {}
        self.resets: dict[int, int] = {}
        self.goaway: int | None = None
        self.closed = False

    def pump(self, seconds: float) -> None:
        """Read what arrives for up to ``seconds`` (returns at the first read)."""
        self.sock.settimeout(max(seconds, 0.001))
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return
        except OSError:
            self.closed = True
            return
        if not data:
            self.closed = True
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived):
                self.statuses[ev.stream_id] = int(dict(ev.headers)[b":status"])
            elif isinstance(ev, h2.events.StreamReset):
                self.resets[ev.stream_id] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev.error_code
            elif isinstance(ev, h2.events.DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self.flush()

    def flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            try:
                self.sock.sendall(out)
            except OSError:
                self.closed = True

    def open_stream(self, headers: list[tuple[str, str]]) -> int:
        sid: int = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, headers)
        self.flush()
        return sid

    def stream_body(self, sid: int, stop: threading.Event, limit_s: float, cap: int) -> int:
        """Send body bytes on ``sid`` as long as the server gives credit (and it is open)."""
        sent = 0
        chunk = b"x" * 16384
        deadline = time.monotonic() + limit_s
        starved_since: float | None = None
        while not stop.is_set() and time.monotonic() < deadline and sent < cap:
            if self.closed or sid in self.statuses or sid in self.resets:
                break
            try:
                window = self.conn.local_flow_control_window(sid)
            except h2.exceptions.StreamClosedError:
                break
            if window <= 0:
                starved_since = starved_since or time.monotonic()
                if time.monotonic() - starved_since > 1.0:
                    break  # the server stopped giving credit: it holds no more
                self.pump(0.1)
                continue
            starved_since = None
            n = min(window, len(chunk), self.conn.max_outbound_frame_size)
            try:
                self.conn.send_data(sid, chunk[:n])
            except h2.exceptions.ProtocolError:
                break
            sent += n
            self.flush()
            if sent % (1 << 20) < n:
                self.pump(0.0)
        return sent

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class FloodResult:
    sent: int = 0
    goaway: int | None = None
    closed: bool = False
    received: bytes = b""


def flood(url: str, payload: bytes, stop: threading.Event, limit_s: float = 5.0) -> FloodResult:
    """Send the client preface, then ``payload`` in 64 KiB slices, reading (and keeping the
    first MiB of) whatever comes back in between; until done, closed, ``stop`` or ``limit_s``."""
    out = FloodResult()
    sock = connect(url)
    deadline = time.monotonic() + limit_s
    view = memoryview(client_preface() + payload)
    try:
        while out.sent < len(view) and not stop.is_set() and time.monotonic() < deadline:
            sock.settimeout(2.0)
            try:
                sock.sendall(view[out.sent : out.sent + 65536])
            except OSError:
                out.closed = True
                break
            out.sent += min(65536, len(view) - out.sent)
            _drain(sock, out)
            if out.closed:
                break
        if not out.closed:
            more, out.closed = read_some(sock, 0.5)
            _keep(out, more)
    finally:
        sock.close()
    out.goaway = goaway_code(out.received)
    return out


def _drain(sock: socket.socket, out: FloodResult) -> None:
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                out.closed = True
                return
            _keep(out, chunk)
    except BlockingIOError:
        pass
    except OSError:
        out.closed = True
    finally:
        sock.setblocking(True)


def _keep(out: FloodResult, chunk: bytes) -> None:
    if len(out.received) < MB:
        out.received += chunk
