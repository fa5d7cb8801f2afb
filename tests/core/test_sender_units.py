"""The sender's pure cores, without sockets: classification, retry, breaker, bucket,
validation, payloads, Web Push encryption, cached provider tokens."""

from __future__ import annotations

import base64
import json
import random

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushsim.b64 import b64url
from pushsim.clock import FakeClock
from sender.api.validate import ValidationError, device_request, notification_request
from sender.config.settings import ApnsCredentials
from sender.policy.breaker import CircuitBreaker, State
from sender.policy.classify import (
    Kind,
    Outcome,
    classify_apns,
    classify_fcm,
    classify_webpush,
    parse_retry_after,
)
from sender.policy.holdoff import DeviceHolds, Hold, HoldScope, ProviderGate, hold_for
from sender.policy.ratelimit import TokenBucket
from sender.policy.retry import RetriesExhausted, RetryPolicy
from sender.providers.apns import ProviderToken
from sender.providers.payload import (
    Message,
    apns_payload,
    apns_request,
    fcm_body,
    webpush_plaintext,
)
from sender.providers.webpush import Vapid
from sender.providers.webpush_crypto import encrypt
from sender.storage.outbox import overall_status

NOW = 1_700_000_000.0


def fcm_error(code: int, status: str, error_code: str | None) -> bytes:
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
        if error_code
        else []
    )
    return json.dumps({"error": {"code": code, "status": status, "details": details}}).encode()


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (200, None, Kind.DELIVERED),
        (410, "Unregistered", Kind.TOKEN_DEAD),
        (400, "BadDeviceToken", Kind.TOKEN_DEAD),
        (400, "DeviceTokenNotForTopic", Kind.TOKEN_DEAD),
        (403, "ExpiredProviderToken", Kind.REAUTH),
        (403, "InvalidProviderToken", Kind.REAUTH),
        (429, "TooManyRequests", Kind.RETRY),
        (500, "InternalServerError", Kind.RETRY),
        (503, "ServiceUnavailable", Kind.RETRY),
        (413, "PayloadTooLarge", Kind.PERMANENT),
        (400, "BadTopic", Kind.PERMANENT),
        (400, "BadCollapseId", Kind.PERMANENT),
    ],
)
def test_apns_classification(status: int, reason: str | None, kind: Kind) -> None:
    body = json.dumps({"reason": reason}).encode() if reason else b""
    out = classify_apns(status, body, None, NOW)
    assert out.kind is kind
    if reason:
        assert out.reason == reason


@pytest.mark.parametrize(
    ("status", "rpc", "code", "kind"),
    [
        (404, "NOT_FOUND", "UNREGISTERED", Kind.TOKEN_DEAD),
        (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", Kind.TOKEN_DEAD),
        (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", Kind.PERMANENT),
        (401, "UNAUTHENTICATED", None, Kind.REAUTH),
        (401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", Kind.PERMANENT),
        (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", Kind.RETRY),
        (500, "INTERNAL", "INTERNAL", Kind.RETRY),
        (503, "UNAVAILABLE", "UNAVAILABLE", Kind.RETRY),
    ],
)
def test_fcm_classification(status: int, rpc: str, code: str | None, kind: Kind) -> None:
    assert classify_fcm(status, fcm_error(status, rpc, code), None, NOW).kind is kind


def test_fcm_success_carries_message_name_and_retry_after_is_read() -> None:
    ok = classify_fcm(200, b'{"name":"projects/p/messages/1"}', None, NOW)
    assert ok.kind is Kind.DELIVERED and ok.message_id == "projects/p/messages/1"
    throttled = classify_fcm(429, fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), "7", NOW)
    assert throttled.retry_after == 7.0 and not throttled.counts_against_breaker
    down = classify_fcm(503, fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"), None, NOW)
    assert down.counts_against_breaker


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (201, Kind.DELIVERED),
        (404, Kind.TOKEN_DEAD),
        (410, Kind.TOKEN_DEAD),
        (403, Kind.REAUTH),
        (429, Kind.RETRY),
        (503, Kind.RETRY),
        (413, Kind.PERMANENT),
        (400, Kind.PERMANENT),
    ],
)
def test_webpush_classification(status: int, kind: Kind) -> None:
    assert classify_webpush(status, b"", None, NOW).kind is kind


def test_retry_after_forms() -> None:
    assert parse_retry_after("3", NOW) == 3.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", NOW) == pytest.approx(10.0)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_retry_policy_full_jitter_sequence_is_reproducible_and_bounded() -> None:
    def run(seed: int) -> list[float]:
        rng, policy, delays = (
            random.Random(seed),
            RetryPolicy(max_attempts=8, backoff_base=0.5, backoff_cap=4.0),
            [],
        )
        for _ in range(7):
            policy = policy.increment(rng)
            delays.append(policy.last_delay)
        with pytest.raises(RetriesExhausted):
            policy.increment(rng)
        return delays

    a, b = run(7), run(7)
    assert a == b
    for n, d in enumerate(a, start=1):
        assert 0.0 <= d <= min(4.0, 0.5 * 2 ** (n - 1))
    assert run(8) != a


def test_retry_policy_is_immutable_and_honours_retry_after() -> None:
    rng = random.Random(1)
    p0 = RetryPolicy(backoff_base=0.01, backoff_cap=0.02)
    p1 = p0.increment(rng, retry_after=5.0)
    assert p0.attempts == 0 and p1.attempts == 1
    assert p1.last_delay >= 5.0


def test_breaker_opens_probes_and_closes() -> None:
    clock = FakeClock()
    b = CircuitBreaker(clock, failure_threshold=3, open_for=1.0, max_open_for=8.0, probes=1)
    for _ in range(3):
        assert b.try_acquire()
        b.on_failure()
    assert b.state is State.OPEN and not b.try_acquire()
    assert b.wait_time() == pytest.approx(1.0)
    clock.advance(1.0)
    assert b.try_acquire() and b.state is State.HALF_OPEN
    assert not b.try_acquire()  # one probe at a time
    b.on_failure()  # probe failed: open again, for twice as long
    assert b.state is State.OPEN and b.current_open_for == 2.0
    clock.advance(1.5)
    assert not b.try_acquire()
    clock.advance(0.5)
    assert b.try_acquire()
    b.on_success()
    assert b.state is State.CLOSED and b.current_open_for == 1.0


def test_breaker_success_resets_the_failure_count() -> None:
    b = CircuitBreaker(FakeClock(), failure_threshold=3)
    for _ in range(10):
        b.on_failure()
        b.on_failure()
        b.on_success()
    assert b.state is State.CLOSED


def test_token_bucket_paces_to_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(clock, rate=10.0, burst=2.0)
    assert bucket.try_take() == 0.0 and bucket.try_take() == 0.0
    wait = bucket.try_take()
    assert wait == pytest.approx(0.1)
    clock.advance(0.1)
    assert bucket.try_take() == 0.0
    assert TokenBucket(clock, rate=0).try_take() == 0.0


def test_overall_status() -> None:
    assert overall_status(["delivered", "delivered"], True) == "delivered"
    assert overall_status(["delivered", "dead_token"], True) == "partially_delivered"
    assert overall_status(["failed", "dead_lettered"], True) == "failed"
    assert overall_status(["pending"], False) == "accepted"
    assert overall_status(["retrying", "delivered"], True) == "in_progress"


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "to"),
        ({"to": {"user": "u"}}, "notification"),
        ({"to": {"user": "u", "topic": "x"}, "data": {"a": "b"}}, "to"),
        ({"to": {"tokens": []}, "data": {"a": "b"}}, "to.tokens"),
        (
            {"to": {"tokens": [{"provider": "apns", "token": "xyz"}]}, "data": {"a": "b"}},
            "to.tokens[0].token",
        ),
        (
            {"to": {"tokens": [{"provider": "mqtt", "token": "x"}]}, "data": {"a": "b"}},
            "to.tokens[0].provider",
        ),
        (
            {
                "to": {
                    "tokens": [{"provider": "webpush", "subscription": {"endpoint": "https://x"}}]
                },
                "data": {"a": "b"},
            },
            "to.tokens[0].subscription.keys",
        ),
        ({"to": {"user": "u"}, "data": {"n": 1}}, "data.n"),
        ({"to": {"user": "u"}, "data": {"google.x": "1"}}, "data.google.x"),
        ({"to": {"user": "u"}, "data": {"a": "b"}, "priority": "urgent"}, "priority"),
        ({"to": {"user": "u"}, "data": {"a": "b"}, "ttl": -1}, "ttl"),
        ({"to": {"user": "u"}, "data": {"a": "b"}, "apns": {"push_type": "fax"}}, "apns.push_type"),
        ({"to": {"topic": "bad topic!"}, "data": {"a": "b"}}, "to.topic"),
        ({"to": {"user": ""}, "data": {"a": "b"}}, "to.user"),
    ],
)
def test_notification_validation_names_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        notification_request(body)
    assert err.value.field == field


def test_device_validation() -> None:
    with pytest.raises(ValidationError) as err:
        device_request({"user_id": "u", "provider": "apns", "token": "nothex"})
    assert err.value.field == "token"
    with pytest.raises(ValidationError) as err:
        device_request({"user_id": "u", "provider": "webpush"})
    assert err.value.field == "subscription"
    d = device_request({"user_id": "u", "provider": "apns", "token": "AB" * 32, "device_id": "d"})
    assert d.token == "ab" * 32 and d.device_id == "d"


# -- payloads -----------------------------------------------------------------------


def test_payloads_carry_data_for_every_provider() -> None:
    msg = Message("T", "B", {"correlation_id": "c1"}, "normal", 60, "grp")
    apns = json.loads(apns_payload(msg))
    assert apns == {"aps": {"alert": {"title": "T", "body": "B"}}, "correlation_id": "c1"}
    req = apns_request(msg, "com.example.app", NOW)
    headers = dict(req.headers)
    assert headers[b"apns-priority"] == b"5" and headers[b"apns-expiration"] == b"1700000060"
    assert headers[b"apns-collapse-id"] == b"grp" and headers[b"apns-topic"] == b"com.example.app"
    fcm = json.loads(fcm_body(msg, token="tok"))["message"]
    assert fcm["data"] == {"correlation_id": "c1"} and fcm["android"]["ttl"] == "60s"
    assert json.loads(webpush_plaintext(msg))["data"] == {"correlation_id": "c1"}


def test_background_push_gets_content_available_and_priority_5() -> None:
    req = apns_request(Message(data={"k": "v"}), "b", NOW)
    assert dict(req.headers)[b"apns-push-type"] == b"background"
    assert dict(req.headers)[b"apns-priority"] == b"5"
    assert json.loads(req.payload)["aps"] == {"content-available": 1}


def test_webpush_encryption_decrypts_with_the_subscription_keys() -> None:
    ua = ec.generate_private_key(ec.SECP256R1())
    ua_pub = ua.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    auth = b"0123456789abcdef"
    body = encrypt(b'{"data":{"x":"1"}}', b64url(ua_pub), b64url(auth))
    assert len(body) == 16 + 4 + 1 + 65 + len(b'{"data":{"x":"1"}}') + 1 + 16
    plain = http_ece.decrypt(body, private_key=ua, auth_secret=auth, version="aes128gcm")
    assert plain == b'{"data":{"x":"1"}}'


def test_vapid_header_is_cached_per_origin() -> None:
    key, pem = _key_and_pem()
    pub = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    clock = FakeClock(NOW)
    vapid = Vapid({"private_key": pem, "public_key": b64url(pub)}, clock)
    h1 = vapid.header("https://push.example")
    assert vapid.header("https://push.example") is h1 and vapid.signed == 1
    token = h1.decode().split("t=")[1].split(",")[0]
    claims = jwt.decode(
        token,
        key.public_key(),
        algorithms=["ES256"],
        audience="https://push.example",
        options={"verify_exp": False},
    )
    assert claims["exp"] <= NOW + 24 * 3600 and claims["sub"].startswith("mailto:")
    clock.advance(3601)
    assert vapid.header("https://push.example") != h1 and vapid.signed == 2


def test_provider_token_is_reused_then_refreshed_between_20_and_60_minutes() -> None:
    pem = _pem()
    clock = FakeClock(NOW)
    token = ProviderToken(ApnsCredentials("KEYID12345", "TEAMID1234", "b", pem), clock)
    first = token.header()
    clock.advance(19 * 60)
    assert token.header() is first
    assert token.signed == 1
    clock.advance(21 * 60)
    second = token.header()
    assert second != first and token.signed == 2
    header = jwt.get_unverified_header(second.split()[1].decode())
    assert header["kid"] == "KEYID12345"
    with pytest.raises(ValueError):
        ProviderToken(ApnsCredentials("K", "T", "b", pem), clock, refresh_after=10 * 60)


def test_b64_helpers_roundtrip() -> None:
    raw = bytes(range(40))
    assert base64.urlsafe_b64decode(b64url(raw) + "==") == raw


def _key_and_pem() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A fresh P-256 key and its PKCS#8 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key, pem


def _pem() -> str:
    return _key_and_pem()[1]


def test_expired_provider_token_is_resigned_once_and_teaches_the_max_age() -> None:
    clock = FakeClock(NOW)
    token = ProviderToken(ApnsCredentials("KEYID12345", "TEAMID1234", "b", _pem()), clock)
    first = token.header()
    clock.advance(11)  # the provider's max age turns out to be 10 s
    assert token.rejected(first, "ExpiredProviderToken")
    second = token.header()
    assert second != first and token.signed == 2
    # a burst of answers about the old token costs no further signatures
    assert not token.rejected(first, "ExpiredProviderToken")
    assert token.header() is second and token.signed == 2
    # from now on the token is refreshed before the age the provider showed
    assert token.observed_max_age is not None and token.observed_max_age <= 10.5
    assert token.refresh_after < 10.0
    clock.advance(token.refresh_after + 0.01)
    third = token.header()
    assert third != second and token.signed == 3


def test_invalid_provider_token_is_resigned_at_most_once_a_second() -> None:
    clock = FakeClock(NOW)
    token = ProviderToken(ApnsCredentials("KEYID12345", "TEAMID1234", "b", _pem()), clock)
    first = token.header()
    assert not token.rejected(first, "InvalidProviderToken")  # signed just now
    clock.advance(1.5)
    assert token.rejected(first, "InvalidProviderToken")
    assert token.header() != first and token.refresh_after == 40 * 60


def test_too_many_provider_token_updates_is_retried_not_counted_against_the_breaker() -> None:
    body = json.dumps({"reason": "TooManyProviderTokenUpdates"}).encode()
    out = classify_apns(429, body, None, NOW)
    assert out.kind is Kind.REAUTH and not out.counts_against_breaker


@pytest.mark.parametrize(
    ("provider", "status", "reason", "scope", "quota"),
    [
        ("apns", 503, "ServiceUnavailable", HoldScope.PROVIDER, False),
        ("apns", 500, "InternalServerError", HoldScope.PROVIDER, False),
        ("apns", 429, "TooManyRequests", HoldScope.DEVICE, True),
        ("fcm", 429, "QUOTA_EXCEEDED", HoldScope.PROVIDER, True),
        ("fcm", 503, "UNAVAILABLE", HoldScope.PROVIDER, False),
        ("webpush", 429, "429", HoldScope.PROVIDER, True),
        ("webpush", 503, "503", HoldScope.PROVIDER, False),
    ],
)
def test_retry_after_holds_the_scope_the_provider_meant(
    provider: str, status: int, reason: str, scope: HoldScope, quota: bool
) -> None:
    hold = hold_for(provider, status, Outcome(Kind.RETRY, reason, 2.0), 100.0)
    assert hold is not None
    assert hold.scope is scope and hold.not_before == 102.0 and hold.quota is quota


def test_no_hold_without_retry_after_or_for_other_answers() -> None:
    assert hold_for("apns", 503, Outcome(Kind.RETRY, "ServiceUnavailable"), 1.0) is None
    assert hold_for("fcm", 200, Outcome(Kind.DELIVERED), 1.0) is None
    assert hold_for("apns", 410, Outcome(Kind.TOKEN_DEAD, "Unregistered", 3.0), 1.0) is None
    assert hold_for("apns", None, Outcome(Kind.RETRY, "x", 3.0), 1.0) is None


def test_provider_gate_holds_then_probes_one_at_a_time_until_a_fresh_success() -> None:
    gate = ProviderGate(margin=0.05)
    straggler = gate.admit()
    gate.hold(Hold(HoldScope.PROVIDER, 12.0))
    assert gate.wait_time(10.0) == pytest.approx(2.05)
    assert gate.wait_time(12.1) == 0.0 and gate.careful(12.1)
    gate.release(straggler, True)  # answered before the hold was known: proves nothing
    assert gate.careful(12.1) and gate.in_flight == 0
    probe = gate.admit()
    gate.release(probe, False)  # still down
    assert gate.careful(12.2)
    probe = gate.admit()
    gate.release(probe, True)
    assert not gate.careful(12.3)


def test_provider_gate_stays_careful_through_a_quota_cooldown() -> None:
    gate = ProviderGate(margin=0.0, quota_cooldown=5.0)
    gate.hold(Hold(HoldScope.PROVIDER, 1.0, quota=True))
    gate.release(gate.admit(), True)
    assert gate.careful(3.0)  # a success does not end a quota's careful phase
    assert not gate.careful(6.01)
    gate.hold(Hold(HoldScope.PROVIDER, 7.0, quota=True))  # later holds never shorten it
    gate.hold(Hold(HoldScope.PROVIDER, 6.5, quota=True))
    assert gate.wait_time(6.6) == pytest.approx(0.4)


def test_device_holds_expire_and_stay_bounded() -> None:
    holds = DeviceHolds(limit=2)
    holds.hold("apns", "a", Hold(HoldScope.DEVICE, 5.0), now=1.0, margin=0.0)
    assert holds.wait_time("apns", "a", 2.0) == pytest.approx(3.0)
    assert holds.wait_time("apns", "b", 2.0) == 0.0
    holds.hold("apns", "b", Hold(HoldScope.DEVICE, 3.0), now=1.0, margin=0.0)
    holds.hold("apns", "c", Hold(HoldScope.DEVICE, 9.0), now=4.0, margin=0.0)  # prunes "b"
    assert set(holds.until) == {("apns", "a"), ("apns", "c")}
    assert holds.wait_time("apns", "a", 6.0) == 0.0 and ("apns", "a") not in holds.until
