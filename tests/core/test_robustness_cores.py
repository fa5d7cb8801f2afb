"""Property tests for the pure cores that judge input: whatever they are given, they return
their documented result or raise only their documented error type.

- APNs header validation returns a Notification or a HeaderError, never raises;
- FCM message validation returns an Outbound or raises MessageInvalid;
- the fault-spec parser returns FaultSpecs or raises FaultSpecError;
- the scenario loader returns a Scenario or raises ScenarioError;
- VAPID header parsing returns credentials, a check or None;
- aes128gcm decryption returns a payload or raises DecryptError.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtests.scenario.load import ScenarioError, loads
from simulator.faults.parse import parse_faults
from simulator.faults.spec import FaultSpecError
from simulator.providers.apns.headers import HeaderError, Notification, parse_headers
from simulator.providers.fcm.message import MessageInvalid, validate_message
from simulator.providers.webpush.crypto import DecryptError, ReceiverKeys, decrypt_aes128gcm
from simulator.providers.webpush.vapid import VapidCheck, parse_authorization

BOUNDED = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

text = st.text(max_size=40)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


def with_keys(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects using the field names a core knows, with values of any type."""
    return st.dictionaries(st.sampled_from(keys) | text, json_values, max_size=6)


# -- APNs ---------------------------------------------------------------------------------

APNS_HEADERS = [
    "apns-push-type",
    "apns-id",
    "apns-expiration",
    "apns-priority",
    "apns-topic",
    "apns-collapse-id",
    "authorization",
    "content-type",
]
header_values = st.one_of(
    text,
    st.sampled_from(["alert", "background", "voip", "10", "5", "0", "-1", "9" * 30, ""]),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@BOUNDED
@given(st.lists(st.tuples(st.sampled_from(APNS_HEADERS) | text, header_values), max_size=12))
def test_apns_header_validation_never_raises(headers: list[tuple[str, str]]) -> None:
    result = parse_headers(headers)
    assert isinstance(result, Notification | HeaderError)
    if isinstance(result, HeaderError):
        assert result.status in (400, 403, 404, 405, 413) and result.reason


# -- FCM ----------------------------------------------------------------------------------

FCM_KEYS = [
    "token",
    "topic",
    "condition",
    "fid",
    "name",
    "data",
    "notification",
    "android",
    "apns",
    "webpush",
    "fcm_options",
    "title",
    "body",
    "image",
    "ttl",
    "priority",
    "collapse_key",
    "headers",
    "payload",
    "aps",
    "analytics_label",
    "restricted_package_name",
]
fcm_messages = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FCM_KEYS) | text, inner, max_size=5)
    ),
    max_leaves=25,
)


@BOUNDED
@given(fcm_messages)
def test_fcm_message_validation_raises_only_message_invalid(message: Any) -> None:
    try:
        validate_message(message, len(json.dumps(message)))
    except MessageInvalid as exc:
        assert exc.error.http_status in (400, 404) and exc.error.message


@BOUNDED
@given(with_keys(["token", "data", "notification", "android", "apns", "webpush"]))
def test_fcm_message_with_a_token_and_odd_fields(extra: dict[str, Any]) -> None:
    message = {**extra, "token": "t" * 20}
    try:
        validate_message(message)
    except MessageInvalid as exc:
        assert exc.error.http_status == 400


# -- faults and scenarios -----------------------------------------------------------------

FAULT_KEYS = [
    "kind",
    "provider",
    "at",
    "duration",
    "window",
    "start",
    "end",
    "share",
    "devices",
    "mode",
    "retry_after",
    "rate",
    "burst",
    "scope",
    "distribution",
    "p50",
    "p99",
    "fixed",
    "status",
    "reason",
    "action",
    "every",
    "enforce",
    "ttl",
]
fault_items = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["outage", "throttle", "latency", "errors", "token_churn", "auth"])
        | text
    },
    optional={k: json_values for k in FAULT_KEYS[1:]},
)


@BOUNDED
@given(st.one_of(json_values, st.lists(fault_items, max_size=3), fault_items))
def test_fault_parser_raises_only_fault_spec_error(data: Any) -> None:
    try:
        specs = parse_faults(data, "test.yaml")
    except FaultSpecError as exc:
        assert exc.source == "test.yaml" and exc.message
    else:
        assert isinstance(specs, list)


SCENARIO_KEYS = [
    "name",
    "duration",
    "seed",
    "population",
    "load",
    "faults",
    "objectives",
    "quick",
    "devices",
    "users",
    "shape",
    "rate_per_user",
    "apns",
    "fcm",
    "webpush",
    "mix",
    "target",
]


@BOUNDED
@given(
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(SCENARIO_KEYS) | text, inner, max_size=5)
        ),
        max_leaves=25,
    )
)
def test_scenario_loader_raises_only_scenario_error(doc: Any) -> None:
    try:
        text_doc = yaml.safe_dump(doc)
    except yaml.YAMLError:
        return
    try:
        loads(text_doc, "fuzz.yaml")
    except ScenarioError as exc:
        assert "fuzz.yaml" in str(exc)


@BOUNDED
@given(
    st.text(max_size=200)
    | st.sampled_from(
        ["[", "{a: [", "a: *x", "!!python/object:os.system {}", ":\n  -", "\t- x", "a: b: c"]
    )
)
def test_scenario_loader_on_arbitrary_text(source: str) -> None:
    try:
        loads(source, "fuzz.yaml")
    except ScenarioError as exc:
        assert "fuzz.yaml" in str(exc) and "\n" not in str(exc)


# -- Web Push -----------------------------------------------------------------------------


@BOUNDED
@given(
    st.one_of(
        st.none(),
        text,
        st.sampled_from(["vapid", "vapid t=, k=", "WebPush x"]).flatmap(
            lambda p: text.map(lambda t: p + " " + t)
        ),
    ),
    st.one_of(st.none(), text),
)
def test_vapid_header_parsing_never_raises(authorization: str | None, crypto: str | None) -> None:
    result = parse_authorization(authorization, crypto)
    if isinstance(result, VapidCheck):
        assert result.status in (400, 401, 403)


RECEIVER = ReceiverKeys.from_private(ec.generate_private_key(ec.SECP256R1()), b"a" * 16)


@BOUNDED
@given(st.binary(max_size=300))
def test_aes128gcm_decryption_raises_only_decrypt_error(body: bytes) -> None:
    try:
        decrypt_aes128gcm(body, RECEIVER)
    except DecryptError as exc:
        assert str(exc)
