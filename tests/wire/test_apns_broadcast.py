"""APNs broadcast push over real sockets: channel management on its own listeners (sandbox
and production), broadcasts on the provider API's host, fan-out to subscribed devices."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from h2clients import H2Client, make_token

from simulator.testing.handle import SimulatorHandle

BUNDLE = "com.example.pushsim"
RID = "0c1d8e4a-1b2c-4d3e-8f90-a1b2c3d4e5f6"
UPDATE = {"aps": {"event": "update", "timestamp": 1, "content-state": {"score": "1-0"}}}


class Broadcaster:
    def __init__(self, sim: SimulatorHandle) -> None:
        self.sim = sim
        self.token = make_token(sim.state_dir)
        self.clients: dict[str, H2Client] = {}

    def client(self, listener: str) -> H2Client:
        if listener not in self.clients:
            url = self.sim.endpoints[listener]
            self.clients[listener] = H2Client(url, self.sim.endpoints["ca_file"])
        return self.clients[listener]

    def call(
        self,
        listener: str,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        **headers: str,
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        raw = (
            body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        )
        hdrs = [("authorization", f"bearer {token or self.token}")]
        hdrs += [(k.replace("_", "-"), v) for k, v in headers.items()]
        status, h, data = self.client(listener).request(path, hdrs, raw, method=method)
        return status, h, (json.loads(data) if data else {})

    def create(self, policy: int = 1, listener: str = "apns_channels", **headers: str) -> str:
        body = {"message-storage-policy": policy, "push-type": "LiveActivity"}
        status, h, _ = self.call(listener, "POST", f"/1/apps/{BUNDLE}/channels", body, **headers)
        assert status == 201, (status, h)
        return h["apns-channel-id"]

    def broadcast(
        self, channel: str, payload: Any = UPDATE, listener: str = "apns", **headers: str
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers.setdefault("apns_push_type", "liveactivity")
        return self.call(
            listener,
            "POST",
            f"/4/broadcasts/apps/{BUNDLE}",
            payload,
            apns_channel_id=channel,
            **headers,
        )


@pytest.fixture
def bc(sim: SimulatorHandle) -> Iterator[Broadcaster]:
    b = Broadcaster(sim)
    yield b
    for c in b.clients.values():
        c.close()


def reason(result: tuple[int, dict[str, str], dict[str, Any]]) -> tuple[int, str]:
    return result[0], result[2].get("reason", "")


def inbox(sim: SimulatorHandle, dev_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sim.control("GET", f"/_sim/devices/{dev_id}/inbox")["messages"]
    return messages


def test_channel_lifecycle_on_both_environments(bc: Broadcaster) -> None:
    for listener in ("apns_channels", "apns_channels_sandbox"):
        cid = bc.create(1, listener, apns_request_id=RID.upper())
        path = f"/1/apps/{BUNDLE}/channels"
        status, h, body = bc.call(listener, "GET", path, apns_channel_id=cid)
        assert status == 200 and body == {"message-storage-policy": 1, "push-type": "LiveActivity"}
        assert len(h["apns-request-id"]) == 36
        status, _, body = bc.call(listener, "GET", f"/1/apps/{BUNDLE}/all-channels")
        assert status == 200 and body == {"channels": [cid]}
        status, h, _ = bc.call(listener, "DELETE", path, apns_channel_id=cid, apns_request_id=RID)
        assert status == 204 and h["apns-request-id"] == RID
        assert reason(bc.call(listener, "GET", path, apns_channel_id=cid)) == (
            400,
            "ChannelNotRegistered",
        )
    # each environment keeps its own channels
    cid = bc.create(0, "apns_channels")
    other = bc.call(
        "apns_channels_sandbox", "GET", f"/1/apps/{BUNDLE}/channels", apns_channel_id=cid
    )
    assert reason(other) == (400, "ChannelNotRegistered")


CH = "/1/apps/{b}/channels"
LA = "LiveActivity"
P = "message-storage-policy"
LA_SUFFIX = "/1/apps/{b}.push-type.liveactivity/channels"
MANAGEMENT_REASONS: list[tuple[str, str, Any, dict[str, str], tuple[int, str]]] = [
    ("GET", CH, None, {}, (400, "MissingChannelId")),
    ("GET", CH, None, {"apns_channel_id": "not base64!"}, (400, "BadChannelId")),
    ("POST", CH, b"{nope", {}, (400, "BadRequestPayload")),
    ("POST", CH, {P: 1, "push-type": LA, "x": 1}, {}, (400, "BadRequestParams")),
    ("POST", CH, {"push-type": LA}, {}, (400, "MissingChannelQueueSize")),
    ("POST", CH, {P: 2, "push-type": LA}, {}, (400, "MissingChannelQueueSize")),
    ("POST", CH, {P: 0}, {}, (400, "MissingPushType")),
    ("POST", CH, {P: 0, "push-type": "Alert"}, {}, (400, "InvalidPushType")),
    ("POST", LA_SUFFIX, {P: 0, "push-type": LA}, {}, (400, "TopicDisallowed")),
    ("PUT", CH, None, {}, (405, "MethodNotAllowed")),
    ("POST", "/1/apps/{b}/all-channels", None, {}, (405, "MethodNotAllowed")),
    ("GET", "/2/apps/{b}/channels", None, {}, (404, "BadPath")),
    ("GET", CH, None, {"apns_request_id": "nope"}, (400, "BadMessageId")),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "headers", "expected"), MANAGEMENT_REASONS)
def test_channel_management_reasons(
    bc: Broadcaster,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    expected: tuple[int, str],
) -> None:
    result = bc.call("apns_channels", method, path.format(b=BUNDLE), body, **headers)
    assert reason(result) == expected
    assert len(result[1]["apns-request-id"]) == 36


def test_channel_auth_the_provider_api_way(bc: Broadcaster, sim: SimulatorHandle) -> None:
    stale = make_token(sim.state_dir, time.time() - 7200)
    path = f"/1/apps/{BUNDLE}/all-channels"
    assert reason(bc.call("apns_channels", "GET", path, token=stale)) == (
        403,
        "ExpiredProviderToken",
    )
    key = sim.control("POST", "/_sim/apns/keys", {"bundle_ids": ["com.other.app"]})
    other = make_token(sim.state_dir, kid=key["key_id"], team=key["team_id"], key_pem=key["p8"])
    fresh = Broadcaster(sim)
    try:
        assert reason(fresh.call("apns_channels", "GET", path, token=other)) == (
            403,
            "TopicMismatch",
        )
    finally:
        for c in fresh.clients.values():
            c.close()


def test_channel_limit_per_app(bc: Broadcaster, sim: SimulatorHandle) -> None:
    book = _live(sim).book
    sim.call(lambda: setattr(book, "max_per_app", 2))
    bc.create()
    bc.create()
    body = {"message-storage-policy": 0, "push-type": "LiveActivity"}
    result = bc.call("apns_channels", "POST", f"/1/apps/{BUNDLE}/channels", body)
    assert reason(result) == (400, "CannotCreateChannelConfig")
    # the other environment has its own allowance
    bc.create(listener="apns_channels_sandbox")


def _live(sim: SimulatorHandle) -> Any:
    from simulator.providers.apns.broadcast_control import LIVE_KEY

    runner = sim.sim._runner
    assert runner is not None
    return runner.app[LIVE_KEY]


def test_broadcast_reaches_subscribers_and_stores_once_for_offline(
    bc: Broadcaster, sim: SimulatorHandle
) -> None:
    devs = sim.mint("apns", 3)
    cid = bc.create(1)
    sub = sim.control(
        "POST",
        "/_sim/apns/channels/subscribe",
        {"channel_id": cid, "device_ids": [devs[0]["id"], devs[1]["id"], "fcm-9"]},
    )
    assert sub["subscribed"] == 2 and sub["refused"] == ["fcm-9"]
    sim.control("POST", f"/_sim/devices/{devs[1]['id']}/online", {"online": False})
    status, h, body = bc.broadcast(cid, apns_request_id=RID, apns_priority="5")
    assert (status, body, h["apns-request-id"]) == (200, {}, RID)
    got = inbox(sim, devs[0]["id"])
    assert [m["message_id"] for m in got] == [RID]
    assert got[0]["broadcast"] is True and got[0]["channel_id"] == cid
    assert got[0]["priority"] == 5 and got[0]["payload"] == UPDATE
    assert inbox(sim, devs[1]["id"]) == [] and inbox(sim, devs[2]["id"]) == []
    # a second broadcast replaces the stored one: the offline device gets the latest, once
    second = {"aps": {"event": "update", "timestamp": 2, "content-state": {"score": "2-0"}}}
    assert bc.broadcast(cid, second)[0] == 200
    sim.control("POST", f"/_sim/devices/{devs[1]['id']}/online", {"online": True})
    late = inbox(sim, devs[1]["id"])
    assert [m["payload"] for m in late] == [second]
    sim.control("POST", f"/_sim/devices/{devs[1]['id']}/online", {"online": False})
    sim.control("POST", f"/_sim/devices/{devs[1]['id']}/online", {"online": True})
    assert len(inbox(sim, devs[1]["id"])) == 1
    assert len(inbox(sim, devs[0]["id"])) == 2


def test_no_storage_policy_misses_offline_devices_and_takes_only_expiration_0(
    bc: Broadcaster, sim: SimulatorHandle
) -> None:
    dev = sim.mint("apns")[0]
    cid = bc.create(0)
    sim.control(
        "POST", "/_sim/apns/channels/subscribe", {"channel_id": cid, "device_ids": [dev["id"]]}
    )
    assert reason(bc.broadcast(cid, apns_expiration=str(int(time.time()) + 60))) == (
        400,
        "BadExpirationDate",
    )
    sim.control("POST", f"/_sim/devices/{dev['id']}/online", {"online": False})
    assert bc.broadcast(cid, apns_expiration="0")[0] == 200
    sim.control("POST", f"/_sim/devices/{dev['id']}/online", {"online": True})
    assert inbox(sim, dev["id"]) == []
    # a reinstall ends the subscription
    sim.control("POST", f"/_sim/devices/{dev['id']}/rotate")
    assert bc.broadcast(cid)[0] == 200
    assert inbox(sim, dev["id"]) == []


@pytest.mark.parametrize(
    ("headers", "payload", "expected"),
    [
        ({"apns_push_type": "alert"}, UPDATE, (400, "InvalidPushType")),
        ({"apns_priority": "7"}, UPDATE, (400, "BadPriority")),
        ({"apns_expiration": "soon"}, UPDATE, (400, "BadExpirationDate")),
        ({}, b"", (400, "PayloadEmpty")),
        ({}, {"no": "aps"}, (400, "PayloadEmpty")),
        ({}, b"[1,", (400, "BadRequestPayload")),
        ({}, {"aps": {"event": "update"}, "pad": "x" * 5200}, (413, "PayloadTooLarge")),
    ],
)
def test_broadcast_reasons(
    bc: Broadcaster, headers: dict[str, str], payload: Any, expected: tuple[int, str]
) -> None:
    cid = bc.create(1)
    assert reason(bc.broadcast(cid, payload, **headers)) == expected


def test_broadcast_channel_and_app_reasons(bc: Broadcaster, sim: SimulatorHandle) -> None:
    cid = bc.create(1)
    path = f"/4/broadcasts/apps/{BUNDLE}"
    assert reason(bc.call("apns", "POST", path, UPDATE, apns_push_type="liveactivity")) == (
        400,
        "MissingChannelId",
    )
    assert reason(bc.broadcast("%%%")) == (400, "BadChannelId")
    assert reason(bc.broadcast("AAAAAAAAAAAAAAAAAAAAAA==")) == (400, "ChannelNotRegistered")
    assert reason(bc.call("apns", "POST", path, UPDATE, apns_channel_id=cid)) == (
        400,
        "MissingPushType",
    )
    # a channel of the production host is not the sandbox's
    assert reason(bc.broadcast(cid, listener="apns_sandbox")) == (400, "ChannelNotRegistered")
    sim.control("PATCH", f"/_sim/apns/apps/{BUNDLE}", {"broadcast": False})
    assert reason(bc.broadcast(cid)) == (400, "FeatureNotEnabled")
    created = bc.call(
        "apns_channels",
        "POST",
        f"/1/apps/{BUNDLE}/channels",
        {"message-storage-policy": 0, "push-type": "LiveActivity"},
    )
    assert reason(created) == (400, "FeatureNotEnabled")
    assert sim.control("GET", f"/_sim/apns/apps/{BUNDLE}")["broadcast"] is False


def test_channel_hosts_by_their_real_names() -> None:
    from simulator.frontdoor.names import route

    where = route("api-manage-broadcast.sandbox.push.apple.com:2195", "/1/apps/x/channels", {})
    assert where is not None and where.listener == "apns_channels_sandbox"
    where = route("api-manage-broadcast.push.apple.com:2196", "/1/apps/x/all-channels", {})
    assert where is not None and where.listener == "apns_channels"
