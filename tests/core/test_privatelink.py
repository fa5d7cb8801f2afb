"""Which non-loopback addresses a pushsim process may listen on: a private link's, in a
namespace pushsim made, with no route off it (checked against a /proc and /run/netns made
here)."""

from __future__ import annotations

import os
from pathlib import Path

from pushsim.privatelink import default_route, isolated_address, own_namespace
from pushsim.process import validate_loopback

ROUTE_HEAD = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
LINK_ONLY = ROUTE_HEAD + "eth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
DEFAULT = LINK_ONLY + "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
V6_REJECT = (
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
)
V6_DEFAULT = V6_REJECT.replace(
    "ffffffff 00000001 00000000 00200200       lo", "00000400 1 0 00000003 eth0"
)


def fake(tmp: Path, route: str, v6: str = V6_REJECT, named: str = "pushsim-run1") -> Path:
    proc = tmp / "proc"
    (proc / "self/ns").mkdir(parents=True)
    (proc / "net").mkdir()
    (proc / "self/ns/net").write_text("")
    (proc / "net/route").write_text(route)
    (proc / "net/ipv6_route").write_text(v6)
    netns = tmp / "netns"
    netns.mkdir()
    os.link(proc / "self/ns/net", netns / named)
    return proc


def test_a_link_address_in_our_namespace_with_no_way_out_is_allowed(tmp_path: Path) -> None:
    proc = fake(tmp_path, LINK_ONLY)
    assert own_namespace(proc, tmp_path / "netns")
    assert not default_route(proc)


def test_a_default_route_or_someone_else_s_namespace_is_not(tmp_path: Path) -> None:
    assert default_route(fake(tmp_path / "a", DEFAULT))
    assert default_route(fake(tmp_path / "b", LINK_ONLY, V6_DEFAULT))
    other = fake(tmp_path / "c", LINK_ONLY, named="mine")
    assert not own_namespace(other, tmp_path / "c" / "netns")


def test_public_and_loopback_rules_hold_on_this_machine() -> None:
    assert not isolated_address("8.8.8.8")
    assert not isolated_address("example.com")
    assert validate_loopback("127.0.0.1") is None
    assert validate_loopback("10.77.0.2") is not None  # not inside a pushsim namespace
