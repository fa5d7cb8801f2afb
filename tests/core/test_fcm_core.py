"""The FCM cores without sockets: schema, conditions, quotas, device side, send decisions."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from pushsim.clock import FakeClock
from simulator.providers.fcm.core import FcmCore, ForcedError
from simulator.providers.fcm.message import MessageInvalid, parse_duration, validate_message
from simulator.providers.fcm.oauth import AccessTokens, ServiceAccount
from simulator.providers.fcm.quota import QuotaConfig, Quotas, SlidingWindow
from simulator.providers.fcm.topics import ConditionError, parse_condition
from simulator.state.devices import DeviceRegistry
from simulator.state.stats import Stats
from simulator.wire import ConnectionInfo, Request, Respond

PROJECT = "pushsim-project"


def violation(msg: object) -> tuple[str, str]:
    with pytest.raises(MessageInvalid) as info:
        validate_message(msg)
    err = info.value.error
    assert err.code == "INVALID_ARGUMENT"
    return err.violations[0].field, err.message


# -- schema ---------------------------------------------------------------------------


def test_exactly_one_target() -> None:
    assert violation({"data": {"a": "b"}})[1] == "Recipient of the message is not set."
    field, msg = violation({"token": "t", "topic": "x"})
    assert field == "message" and "Exactly one" in msg
    assert validate_message({"topic": "news"}).target == "topic"
    assert validate_message({"topic": "/topics/news"}).value == "news"
    assert violation({"topic": "bad topic!"})[0] == "message.topic"


def test_data_must_map_strings_to_strings_and_refuse_reserved_keys() -> None:
    field, msg = violation({"token": "t", "data": {"a": "b", "n": 1}})
    assert field == "message.data[1].value" and "TYPE_STRING" in msg
    for key in ("from", "message_type", "google.c.a", "gcm.n.e", "GOOGLE_x"):
        assert violation({"token": "t", "data": {key: "v"}})[0] == "message.data[0].key"
    assert (
        violation({"token": "t", "android": {"data": {"from": "v"}}})[0]
        == "message.android.data[0].key"
    )
    assert validate_message({"token": "t", "data": {"fromage": "brie"}}).target == "token"


def test_unknown_fields_and_wrong_types_read_like_googles_parser() -> None:
    field, msg = violation({"token": "t", "andriod": {}})
    assert field == "message" and 'Unknown name "andriod"' in msg
    field, msg = violation({"token": "t", "android": {"priority": "URGENT"}})
    assert field == "message.android.priority" and "URGENT" in msg
    assert (
        violation({"token": "t", "notification": {"title": 5}})[0] == "message.notification.title"
    )
    assert violation({"token": "t", "apns": {"payload": []}})[0] == "message.apns.payload"
    assert violation(["not", "an", "object"])[0] == "message"


def test_camel_case_spellings_are_accepted() -> None:
    out = validate_message(
        {"token": "t", "android": {"collapseKey": "k", "ttl": "10s", "directBootOk": True}}
    )
    assert out.collapse_key == "k" and out.ttl == 10.0


def test_ttl_duration_format_and_range() -> None:
    assert parse_duration("3.5s") == 3.5
    assert parse_duration("0s") == 0.0
    assert (
        parse_duration("3.5") is None
        and parse_duration(3) is None
        and parse_duration("1.0000000001s") is None
    )
    assert validate_message({"token": "t", "android": {"ttl": "2419200s"}}).ttl == 2_419_200
    assert violation({"token": "t", "android": {"ttl": "2419201s"}})[0] == "message.android.ttl"
    assert violation({"token": "t", "android": {"ttl": "-1s"}})[0] == "message.android.ttl"
    assert violation({"token": "t", "android": {"ttl": "1h"}})[0] == "message.android.ttl"


def test_size_limits_4096_and_2048_for_topics() -> None:
    fits = {"token": "t", "data": {"k": "x" * 4000}}
    assert validate_message(fits).target == "token"
    assert "too big" in violation({"token": "t", "data": {"k": "x" * 4100}})[1]
    assert "too big" in violation({"topic": "news", "data": {"k": "x" * 2100}})[1]
    assert validate_message({"topic": "news", "data": {"k": "x" * 1900}}).target == "topic"


def test_overrides_are_checked() -> None:
    assert violation({"token": "t", "android": {"notification": {"color": "red"}}})[0].endswith(
        "color"
    )
    assert violation({"token": "t", "webpush": {"fcm_options": {"link": "http://x"}}})[0].endswith(
        "link"
    )
    assert (
        violation({"token": "t", "apns": {"headers": {"apns-priority": "7"}}})[0]
        == "message.apns.headers"
    )
    out = validate_message(
        {"token": "t", "apns": {"headers": {"apns-collapse-id": "c"}, "payload": {"aps": {}}}}
    )
    assert out.platforms == frozenset({"apns"}) and out.collapse_key == "c"


# -- conditions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "topics", "expected"),
    [
        ("'a' in topics && ('b' in topics || 'c' in topics)", {"a", "c"}, True),
        ("'a' in topics && ('b' in topics || 'c' in topics)", {"b", "c"}, False),
        ("'a' in topics || 'b' in topics && 'c' in topics", {"a"}, True),  # && binds tighter
        ("('a' in topics || 'b' in topics) && 'c' in topics", {"a"}, False),
        ('!("a" in topics)', set(), True),
        ("!'a' in topics && 'b' in topics", {"b"}, True),
        ("!!'a' in topics", {"a"}, True),
    ],
)
def test_condition_evaluation(text: str, topics: set[str], expected: bool) -> None:
    assert parse_condition(text).matches(topics) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "'a' in topics &&",
        "'a' in topics & 'b' in topics",
        "'a' in topic",
        "('a' in topics",
        "'a' in topics)",
        "'a b' in topics",
        " || ".join(f"'{t}' in topics" for t in "abcdef"),
    ],
)
def test_condition_errors(text: str) -> None:
    with pytest.raises(ConditionError):
        parse_condition(text)


def test_condition_topics_and_negation() -> None:
    cond = parse_condition("'a' in topics && !('b' in topics)")
    assert cond.topics() == ("a", "b") and not cond.has_negation
    assert parse_condition("!('b' in topics)").has_negation


# -- quotas ---------------------------------------------------------------------------


def test_sliding_window_is_not_clock_aligned() -> None:
    w = SlidingWindow(limit=3, window=60.0)
    assert w.try_add(30.0) is None and w.try_add(40.0) is None and w.try_add(50.0) is None
    wait = w.try_add(61.0)  # a clock-aligned minute would have reset at 60
    assert wait is not None and 28.0 <= wait <= 30.0
    assert w.try_add(91.0) is None  # the event at 30 s has left the window


def test_device_quotas_minute_hour_and_collapsible_burst() -> None:
    q = Quotas(
        QuotaConfig(
            device_per_minute=3,
            device_per_hour=5,
            collapsible_burst=2,
            collapsible_refill_seconds=180,
        )
    )
    now = 1000.0
    for i in range(3):
        assert q.check("p", "d", False, now + i) is None
    which, wait = q.check("p", "d", False, now + 3) or ("", 0.0)
    assert which == "device_per_minute" and wait == pytest.approx(57.0)
    assert q.check("p", "d", False, now + 61) is None
    assert q.check("p", "d", False, now + 62) is None
    which, wait = q.check("p", "d", False, now + 125) or ("", 0.0)
    assert which == "device_per_hour" and wait == pytest.approx(3600 - 125)
    assert q.check("p", "e", True, now) is None and q.check("p", "e", True, now) is None
    which, wait = q.check("p", "e", True, now + 1) or ("", 0.0)
    assert which == "collapsible_burst" and wait == pytest.approx(179.0)
    assert q.check("p", "e", True, now + 180) is None


def test_project_quota() -> None:
    q = Quotas(QuotaConfig(project_per_minute=2))
    assert q.check("p", "a", False, 0.5) is None and q.check("p", "b", False, 0.6) is None
    over = q.check("p", "c", False, 0.7)
    assert over is not None and over[0] == "project_per_minute" and 59 <= over[1] <= 60
    assert q.check("other", "c", False, 0.7) is None


# -- the core, driven with requests ---------------------------------------------------


class Rig:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.registry = DeviceRegistry(self.clock, random.Random(1))
        self.stats = Stats(self.clock)
        self.tokens = AccessTokens(self.clock, random.Random(2))
        self.core = FcmCore(self.registry, self.tokens, self.clock, self.stats)
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        account = ServiceAccount("sa@x", PROJECT, key)
        self.access = self.tokens.issue(
            account, frozenset({"https://www.googleapis.com/auth/firebase.messaging"}), 3600
        ).token

    def send(
        self, message: Any, *, token: str | None = None, project: str = PROJECT, **extra: Any
    ) -> tuple[int, Any]:
        conn = ConnectionInfo(1, "fcm", "2", True, None, 0.0)
        body = json.dumps({"message": message, **extra}).encode()
        auth = [("authorization", f"Bearer {token or self.access}")]
        resp = self.core.send(
            Request("POST", f"/v1/projects/{project}/messages:send", auth, body, conn), project
        )
        assert isinstance(resp, Respond)
        return resp.status, json.loads(resp.body)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_send_delivers_with_name_and_correlation(rig: Rig) -> None:
    dev = rig.registry.mint("fcm")[0]
    status, body = rig.send({"token": dev.token, "data": {"correlation_id": "c-1"}})
    assert status == 200 and body["name"].startswith(f"projects/{PROJECT}/messages/")
    assert dev.inbox[0]["correlation_id"] == "c-1" and dev.inbox[0]["message_id"] == body["name"]
    assert rig.registry.deliveries[-1]["correlation_id"] == "c-1"


def test_validate_only_checks_but_delivers_nothing(rig: Rig) -> None:
    dev = rig.registry.mint("fcm")[0]
    status, _ = rig.send({"token": dev.token}, validate_only=True)
    assert status == 200 and dev.inbox == []
    rig.registry.uninstall(dev.id)
    assert rig.send({"token": dev.token}, validate_only=True)[0] == 404


def test_access_token_expiry(rig: Rig) -> None:
    dev = rig.registry.mint("fcm")[0]
    rig.clock.advance(3601)
    status, body = rig.send({"token": dev.token})
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    assert body["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
    assert rig.send({"token": dev.token}, token="ya29.never-issued")[0] == 401


def test_offline_store_collapse_ttl_and_overflow(rig: Rig) -> None:
    dev = rig.registry.mint("fcm")[0]
    dev.online = False
    rig.send({"token": dev.token, "data": {"n": "1"}, "android": {"collapse_key": "score"}})
    rig.send({"token": dev.token, "data": {"n": "2"}, "android": {"collapse_key": "score"}})
    rig.send({"token": dev.token, "data": {"n": "short"}, "android": {"ttl": "5s"}})
    rig.send({"token": dev.token, "data": {"n": "now-or-never"}, "android": {"ttl": "0s"}})
    assert [p["entry"]["data"]["n"] for p in dev.pending] == ["2", "short"]
    rig.clock.advance(10)
    dev.online = True
    rig.core.devices.flush(dev)
    assert [m["data"]["n"] for m in dev.inbox] == ["2"]

    dev.online = False
    rig.core.quotas.config.enabled = False
    for i in range(101):
        rig.send({"token": dev.token, "data": {"n": str(i)}})
    assert len(dev.pending) == 1
    dev.online = True
    rig.core.devices.flush(dev)
    assert dev.inbox[1] == {
        "provider": "fcm",
        "event": "deleted_messages",
        "at": rig.clock.time(),
        "dropped": 100,
    }
    assert dev.inbox[2]["data"]["n"] == "100"


def test_errors_by_token_state_and_project(rig: Rig) -> None:
    dead, other = rig.registry.mint("fcm")[0], rig.registry.mint("fcm", app="other-project")[0]
    rig.registry.uninstall(dead.id)
    status, body = rig.send({"token": dead.token})
    assert status == 404 and body["error"]["details"][0]["errorCode"] == "UNREGISTERED"
    assert ("fcm", dead.token) in rig.registry.rejections
    status, body = rig.send({"token": other.token})
    assert status == 403 and body["error"]["details"][0]["errorCode"] == "SENDER_ID_MISMATCH"
    status, body = rig.send({"token": "never-issued"})
    assert (
        status == 400
        and body["error"]["details"][1]["fieldViolations"][0]["field"] == "message.token"
    )
    status, body = rig.send({"token": other.token}, project="other-project")
    assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"


def test_forced_errors_count_down(rig: Rig) -> None:
    dev = rig.registry.mint("fcm")[0]
    rig.core.forced.add(ForcedError("INTERNAL", count=2))
    assert rig.send({"token": dev.token})[0] == 500
    assert rig.send({"token": dev.token})[0] == 500
    assert rig.send({"token": dev.token})[0] == 200


def test_condition_fan_out(rig: Rig) -> None:
    a, b, c = rig.registry.mint("fcm", 3)
    for dev, topics in ((a, ["x", "y"]), (b, ["x"]), (c, ["z"])):
        for t in topics:
            rig.core.topics.subscribe(dev, t)
    status, _ = rig.send({"condition": "'x' in topics && !('y' in topics)", "data": {"k": "v"}})
    assert status == 200 and len(b.inbox) == 1 and not a.inbox and not c.inbox
    rig.send({"condition": "!('x' in topics)"})
    assert len(c.inbox) == 1 and c.inbox[0]["from"] == "!('x' in topics)"
    rig.registry.rotate(a.id)  # a reinstall forgets the subscriptions
    rig.send({"topic": "y"})
    assert not a.inbox
