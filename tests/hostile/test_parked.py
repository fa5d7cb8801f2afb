"""Parked connections: a cap per listener with a reserve of descriptors for the rest,
timeouts for the preface and for a header block that never ends, and an idle timeout on
every provider's listener."""

from __future__ import annotations

import resource
import threading
import time
from pathlib import Path

import pytest
from hostile_peers import (
    CONTINUATION,
    HEADERS,
    Measure,
    Probe,
    Target,
    client_preface,
    connect,
    frame,
    open_fds,
    read_some,
    rss_kb,
    sockets,
    under_attack,
)

from simulator.testing.handle import running_simulator

pytestmark = pytest.mark.timeout(90)

GROWTH_MB = 32
WORST_S = 1.0
FD_LIMIT = 1024
HEADER_TIMEOUT_S = 5.0  # the listeners' default preface and header-block timeouts


def _check(m: Measure, target: Target) -> None:
    assert m.attack_error is None, m.attack_error
    assert m.growth_mb < GROWTH_MB, m.summary("growth")
    assert all(st == 200 for st, _s in m.during), m.during
    assert m.worst_s < WORST_S, m.summary("latency")
    assert m.after[0] == 200
    assert target.errors_logged() == []


def test_idle_sockets_cannot_exhaust_descriptors(target: Target) -> None:
    """With a 1,024-descriptor limit, 1,100 idle sockets on one listener leave the other
    listeners and the control API serving (new connections included)."""
    resource.prlimit(target.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    base = rss_kb(target.pid)
    with sockets(1100) as held:
        for _ in range(1100):
            try:
                held.append(connect(target.endpoints["webpush"], timeout=2))
            except OSError:
                break
        time.sleep(0.5)
        print(f"\n[hostile] idle sockets: {len(held)} opened, simulator fds {open_fds(target.pid)}")
        t0 = time.monotonic()
        probe = Probe(target, timeout=3.0)  # a new connection: minting goes through control
        try:
            status, seconds = probe.send()
        finally:
            probe.close()
        stats = target.control("GET", "/_sim/stats")
        growth = (rss_kb(target.pid) - base) / 1024
        print(
            f"[hostile] idle sockets: new APNs connection {status} in {seconds * 1000:.0f} ms "
            f"(with minting {1000 * (time.monotonic() - t0):.0f} ms), rss growth {growth:.1f} MB"
        )
    assert status == 200 and seconds < WORST_S
    assert "apns" in stats["providers"]
    assert growth < GROWTH_MB
    assert target.errors_logged() == []


def test_parked_header_blocks_are_bounded(target: Target) -> None:
    """150 connections each park an unfinished header block of ~1 MB (60 CONTINUATIONs)."""
    block = b"\x00" * 16384
    payload = client_preface() + frame(HEADERS, 0, 1, block) + frame(CONTINUATION, 0, 1, block) * 59

    def attack(stop: threading.Event) -> int:
        parked = 0
        with sockets(150) as held:
            for _ in range(150):
                if stop.is_set():
                    break
                sock = connect(target.endpoints["fcm"])
                held.append(sock)
                sock.settimeout(1.0)
                try:
                    sock.sendall(payload)
                    parked += 1
                except OSError:
                    pass
            stop.wait(1.0)
        return parked

    m = under_attack(target, attack, seconds=15.0, name="parked header blocks")
    _check(m, target)


@pytest.mark.parametrize(
    "opening",
    [
        b"",  # nothing at all
        b"PRI * HTTP/2.0\r\n",  # half a preface
        client_preface() + frame(HEADERS, 0, 1, b"\x82"),  # a header block that never ends
        b"POST /3/device/x HTTP/1.1\r\nhost: localhost\r\n",  # a request head that never ends
    ],
    ids=["silent", "half-preface", "unfinished-h2-headers", "unfinished-h11-head"],
)
def test_slow_openings_time_out(target: Target, opening: bytes) -> None:
    sock = connect(target.endpoints["fcm"])
    try:
        t0 = time.monotonic()
        sock.sendall(opening)
        # a trickle of nothing that changes the state: the deadline is the opening's
        _data, closed = read_some(sock, HEADER_TIMEOUT_S * 2)
        waited = time.monotonic() - t0
    finally:
        sock.close()
    print(f"\n[hostile] slow opening {opening[:20]!r}: closed={closed} after {waited:.1f} s")
    assert closed and waited < HEADER_TIMEOUT_S * 1.6


def test_every_provider_listener_has_an_idle_timeout(tmp_path: Path) -> None:
    with running_simulator(tmp_path / "state", tls=False) as sim:
        timeouts = sim.call(
            lambda: {name: lst.options.idle_timeout for name, lst in sim.sim.listeners.items()}
        )
    assert timeouts and all(t is not None and 0 < t <= 3600 for t in timeouts.values()), timeouts
