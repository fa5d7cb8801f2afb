"""The front door's routing table: (authority, path) -> listener and path, with no sockets."""

from __future__ import annotations

import pytest

from simulator.frontdoor.names import HOSTS, REAL_WEBPUSH_PREFIX, Route, hosts_lines, route
from simulator.netns.sandbox import child_env, nsswitch_text

LOCAL = {4001: "apns", 4002: "apns_sandbox", 4003: "fcm", 4004: "webpush"}


@pytest.mark.parametrize(
    ("authority", "path", "expected"),
    [
        ("api.push.apple.com", "/3/device/ab", Route("apns", "/3/device/ab", "api.push.apple.com")),
        (
            "api.push.apple.com:2197",
            "/3/device/ab",
            Route("apns", "/3/device/ab", "api.push.apple.com:2197"),
        ),
        (
            "api.sandbox.push.apple.com:443",
            "/3/device/ab",
            Route("apns_sandbox", "/3/device/ab", "api.sandbox.push.apple.com"),
        ),
        (
            "api.development.push.apple.com",
            "/3/device/ab",
            Route("apns_sandbox", "/3/device/ab", "api.development.push.apple.com"),
        ),
        (
            "fcm.googleapis.com",
            "/v1/projects/p/messages:send",
            Route("fcm", "/v1/projects/p/messages:send", "fcm.googleapis.com"),
        ),
        ("fcm.googleapis.com", "/fcm/send/tok", Route("webpush", "/wp/tok", "fcm.googleapis.com")),
        ("fcm.googleapis.com", "/m/msg", Route("webpush", "/m/msg", "fcm.googleapis.com")),
        ("oauth2.googleapis.com", "/token", Route("fcm", "/token", "oauth2.googleapis.com")),
        ("www.googleapis.com", "/oauth2/v4/token", Route("fcm", "/token", "www.googleapis.com")),
        (
            "iid.googleapis.com",
            "/iid/v1:batchAdd",
            Route("fcm", "/iid/v1:batchAdd", "iid.googleapis.com"),
        ),
        (
            "updates.push.services.mozilla.com",
            "/wpush/v2/tok",
            Route("webpush", "/wp/tok", "updates.push.services.mozilla.com"),
        ),
        (
            "UPDATES.push.services.mozilla.com",
            "/wpush/v1/tok",
            Route("webpush", "/wp/tok", "updates.push.services.mozilla.com"),
        ),
        ("web.push.apple.com", "/tok", Route("webpush", "/wp/tok", "web.push.apple.com")),
        ("web.push.apple.com", "/m/msg", Route("webpush", "/m/msg", "web.push.apple.com")),
        ("127.0.0.1:4003", "/token", Route("fcm", "/token", "127.0.0.1:4003")),
        ("localhost:4004", "/wp/tok", Route("webpush", "/wp/tok", "localhost:4004")),
        ("[::1]:4001", "/3/device/ab", Route("apns", "/3/device/ab", "[::1]:4001")),
    ],
)
def test_route(authority: str, path: str, expected: Route) -> None:
    assert route(authority, path, LOCAL) == expected


@pytest.mark.parametrize(
    "authority", ["example.com", "127.0.0.1:9", "127.0.0.1", "", "push.apple.com", "[::1"]
)
def test_unknown_authorities_go_nowhere(authority: str) -> None:
    assert route(authority, "/", LOCAL) is None


def test_every_real_name_is_mapped_and_every_flavour_has_its_endpoint() -> None:
    assert {line.split("\t")[1] for line in hosts_lines()} == set(HOSTS)
    assert all(line.startswith("127.0.0.1\t") for line in hosts_lines())
    for prefix in REAL_WEBPUSH_PREFIX.values():
        found = route(prefix.split("/")[2], "/" + prefix.split("/", 3)[3] + "tok", LOCAL)
        assert found is not None and found.listener == "webpush" and found.path == "/wp/tok"


def test_nsswitch_looks_hosts_up_in_files_and_dns_only() -> None:
    system = "passwd: files systemd\nhosts:   files mdns4_minimal [NOTFOUND=return] dns resolve\n"
    assert nsswitch_text(system) == "passwd: files systemd\nhosts: files dns\n"
    assert nsswitch_text("passwd: files\n").endswith("hosts: files dns\n")


def test_child_env_drops_proxies() -> None:
    env = child_env({"HTTPS_PROXY": "http://p:3128", "no_proxy": "x", "HOME": "/h"}, {"A": "1"})
    assert env == {"HOME": "/h", "A": "1"}
