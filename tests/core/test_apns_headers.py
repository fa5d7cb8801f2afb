"""APNs header rules as pure functions (no sockets)."""

from __future__ import annotations

import pytest

from simulator.providers.apns.headers import (
    HeaderError,
    Notification,
    canonical_apns_id,
    parse_headers,
    split_topic,
)

TOPIC = "com.example.pushsim"


def reason(headers: list[tuple[str, str]]) -> str:
    out = parse_headers(headers)
    assert isinstance(out, HeaderError)
    return out.reason


def ok(headers: list[tuple[str, str]]) -> Notification:
    out = parse_headers(headers)
    assert isinstance(out, Notification), out
    return out


def test_defaults_when_headers_absent() -> None:
    n = ok([("apns-topic", TOPIC)])
    assert (n.push_type, n.priority, n.expiration, n.apns_id, n.bundle_id) == (
        "alert",
        10,
        None,
        None,
        TOPIC,
    )


def test_apns_id_canonical_and_lowercased() -> None:
    assert (
        canonical_apns_id("123E4567-E89B-12D3-A456-426614174000")
        == "123e4567-e89b-12d3-a456-426614174000"
    )
    assert canonical_apns_id("123e4567e89b12d3a456426614174000") is None
    assert canonical_apns_id("123e4567-e89b-12d3-a456-42661417400g") is None
    assert reason([("apns-id", "nope")]) == "BadMessageId"


@pytest.mark.parametrize(
    ("push_type", "topic", "priority"),
    [
        ("alert", TOPIC, "10"),
        ("background", TOPIC, "5"),
        ("location", TOPIC + ".location-query", "10"),
        ("voip", TOPIC + ".voip", "10"),
        ("complication", TOPIC + ".complication", "10"),
        ("fileprovider", TOPIC + ".pushkit.fileprovider", "10"),
        ("mdm", "com.apple.mgmt.External.1234", "10"),
        ("liveactivity", TOPIC + ".push-type.liveactivity", "5"),
        ("pushtotalk", TOPIC + ".voip-ptt", "10"),
        ("widgets", TOPIC + ".push-type.widgets", "10"),
        ("controls", TOPIC + ".push-type.controls", "10"),
    ],
)
def test_every_push_type_with_its_topic_suffix(push_type: str, topic: str, priority: str) -> None:
    n = ok([("apns-push-type", push_type), ("apns-topic", topic), ("apns-priority", priority)])
    assert n.push_type == push_type and n.topic == topic
    if push_type != "mdm":
        assert n.bundle_id == TOPIC


def test_wrong_suffix_for_push_type_is_bad_topic() -> None:
    assert reason([("apns-push-type", "voip"), ("apns-topic", TOPIC)]) == "BadTopic"
    assert reason([("apns-push-type", "alert"), ("apns-topic", TOPIC + ".voip")]) == "BadTopic"
    assert reason([("apns-topic", "bad topic!")]) == "BadTopic"
    assert reason([("apns-topic", "")]) == "MissingTopic"


def test_priority_rules() -> None:
    assert reason([("apns-priority", "7")]) == "BadPriority"
    assert reason([("apns-push-type", "background"), ("apns-priority", "10")]) == "BadPriority"
    assert reason([("apns-push-type", "background")]) == "BadPriority"  # default 10
    assert reason([("apns-push-type", "liveactivity"), ("apns-priority", "1")]) == "BadPriority"
    assert ok([("apns-priority", "1")]).priority == 1


def test_push_type_expiration_collapse() -> None:
    assert reason([("apns-push-type", "banner")]) == "InvalidPushType"
    assert reason([("apns-expiration", "soon")]) == "BadExpirationDate"
    assert reason([("apns-expiration", "-1")]) == "BadExpirationDate"
    assert ok([("apns-expiration", "0")]).expiration == 0
    assert reason([("apns-collapse-id", "x" * 65)]) == "BadCollapseId"
    assert reason([("apns-collapse-id", "é" * 33)]) == "BadCollapseId"  # 66 bytes
    assert ok([("apns-collapse-id", "x" * 64)]).collapse_id == "x" * 64


@pytest.mark.parametrize(
    "name", ["apns-id", "apns-topic", "apns-priority", "authorization", "apns-collapse-id"]
)
def test_duplicate_headers(name: str) -> None:
    value = "123e4567-e89b-12d3-a456-426614174000" if name == "apns-id" else "10"
    assert reason([(name, value), (name, value)]) == "DuplicateHeaders"


def test_split_topic_prefers_longest_suffix() -> None:
    assert split_topic("a.b.voip-ptt") == ("a.b", ".voip-ptt")
    assert split_topic("a.b.pushkit.fileprovider") == ("a.b", ".pushkit.fileprovider")
    assert split_topic("a.b") == ("a.b", "")
