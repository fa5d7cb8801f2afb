"""The fuzz targets: the pure cores, each fed what a peer or a file could hand it.

A target takes one input (bytes) and returns normally, or raises the one error its core
documents for bad input (caught here); anything else escaping is a crash: a bug to fix,
its input kept under ``regressions/<target>/``. Each target also has seeds (valid inputs
to mutate from). Nothing here needs atheris: the regression tests replay inputs without it.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import structured
import yaml

TOPIC = "com.example.pushsim"


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]] = field(default=lambda: [])


# -- APNs: request headers, and a whole request through the core -----------------------

APNS_HEADERS = [
    "apns-id",
    "apns-push-type",
    "apns-expiration",
    "apns-priority",
    "apns-topic",
    "apns-collapse-id",
    "authorization",
    "content-type",
    "apns-channel-id",
    "apns-request-id",
]
APNS_VALUES = [
    "alert",
    "background",
    "voip",
    "liveactivity",
    "location",
    "10",
    "5",
    "1",
    "0",
    TOPIC,
    TOPIC + ".voip",
    TOPIC + ".push-type.liveactivity",
    "123e4567-e89b-12d3-a456-426614174000",
    "bearer x.y.z",
]
APNS_PAYLOAD_KEYS = [
    "aps",
    "alert",
    "title",
    "body",
    "content-available",
    "badge",
    "sound",
    "mutable-content",
    "event",
    "content-state",
    "timestamp",
    "attributes-type",
    "attributes",
    "dismissal-date",
    "stale-date",
    "relevance-score",
]


def _headers(fdp: Any, names: list[str], values: list[str]) -> list[tuple[str, str]]:
    out = []
    for _ in range(fdp.ConsumeIntInRange(0, 9)):
        name = (
            fdp.PickValueInList(names)
            if fdp.ConsumeIntInRange(0, 5)
            else "x-" + (structured.text(fdp, names, 10))
        )
        out.append((name.lower(), structured.text(fdp, values, 80)))
    return out


def apns_headers(data: bytes) -> None:
    from simulator.providers.apns.headers import parse_headers

    fdp = structured.provider(data)
    parse_headers(_headers(fdp, APNS_HEADERS, APNS_VALUES))


@dataclass
class _Apns:
    core: Any
    token: str
    device: str


@cache
def _apns() -> _Apns:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pushsim.clock import FakeClock
    from simulator.providers.apns.auth import ProviderTokenVerifier, SigningKey
    from simulator.providers.apns.core import ApnsCore
    from simulator.state.devices import DeviceRegistry
    from simulator.state.stats import Stats

    clock = FakeClock(time.time())
    registry = DeviceRegistry(clock, random.Random(1))
    device = next(iter(registry.mint("apns", 1, app=TOPIC))).token
    key = ec.derive_private_key(7, ec.SECP256R1())
    verifier = ProviderTokenVerifier(
        [SigningKey("ABCDEFGHIJ", "TEAM123456", key.public_key(), frozenset({TOPIC}))]
    )
    core = ApnsCore(registry, verifier, clock, Stats(clock), rng=random.Random(2))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    token = jwt.encode(
        {"iss": "TEAM123456", "iat": int(clock.time())},
        pem,
        algorithm="ES256",
        headers={"kid": "ABCDEFGHIJ"},
    )
    return _Apns(core, token, device)


def apns_request(data: bytes) -> None:
    from simulator.wire import ConnectionInfo, Request

    apns = _apns()
    fdp = structured.provider(data)
    headers = _headers(fdp, APNS_HEADERS, [*APNS_VALUES, f"bearer {apns.token}"])
    if fdp.ConsumeIntInRange(0, 3):
        headers.append(("authorization", f"bearer {apns.token}"))
    device = apns.device if fdp.ConsumeIntInRange(0, 3) else structured.text(fdp, [], 70)
    path = fdp.PickValueInList(["/3/device/", "/3/device", "/4/broadcasts/apps/", "/"])
    if fdp.ConsumeBool():
        body = json.dumps(structured.obj(fdp, APNS_PAYLOAD_KEYS)).encode()
    else:
        body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 6000))
    method = fdp.PickValueInList(["POST", "POST", "GET", "DELETE"])
    conn = ConnectionInfo(1, "apns", "2", True, None, 0.0)
    apns.core.handle(Request(method, path + device, headers, body, conn, 1, "apns", "https"))


def _apns_seeds() -> list[bytes]:
    return [b"\x00" * 64, bytes(range(256)), b'{"aps":{"alert":"hi"}}' * 4]


# -- FCM: the message of a send -------------------------------------------------------

FCM_KEYS = [
    "message",
    "validate_only",
    "token",
    "topic",
    "condition",
    "fid",
    "name",
    "notification",
    "title",
    "body",
    "image",
    "data",
    "android",
    "apns",
    "webpush",
    "fcm_options",
    "analytics_label",
    "ttl",
    "priority",
    "collapse_key",
    "restricted_package_name",
    "direct_boot_ok",
    "headers",
    "payload",
    "notification_count",
    "visibility",
    "event_time",
    "vibrate_timings",
    "light_settings",
    "color",
    "red",
    "from",
    "google.x",
    "gcm.y",
    "link",
    "apns-priority",
    "aps",
]


def fcm_message(data: bytes) -> None:
    from simulator.providers.fcm.message import validate_message
    from simulator.providers.fcm.schema import MessageInvalid

    fdp = structured.provider(data)
    if fdp.ConsumeIntInRange(0, 7) == 0:
        raw = fdp.ConsumeBytes(fdp.remaining_bytes())
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            return
    else:
        message = (
            structured.value(fdp, FCM_KEYS)
            if fdp.ConsumeIntInRange(0, 9) == 0
            else (structured.obj(fdp, FCM_KEYS))
        )
        raw = json.dumps(message).encode()
    try:
        validate_message(message, len(raw))
    except MessageInvalid:
        pass


def _fcm_seeds() -> list[bytes]:
    return [json.dumps({"token": "t" * 150, "notification": {"title": "x"}}).encode()]


# -- fault plans and scenario files ----------------------------------------------------

FAULT_KEYS = [
    "id",
    "kind",
    "provider",
    "start",
    "at",
    "duration",
    "end",
    "window",
    "share",
    "token",
    "project",
    "anchor",
    "mode",
    "retry_after",
    "after",
    "scope",
    "rate",
    "burst",
    "distribution",
    "delay",
    "min",
    "max",
    "p50",
    "p99",
    "probability",
    "action",
    "apns_token_max_age",
    "oauth_token_lifetime",
    "outage",
    "throttle",
    "latency",
    "errors",
    "token_churn",
    "auth",
    "apns",
    "fcm",
    "webpush",
    "any",
    "status",
    "refused",
    "reset",
    "goaway",
    "hang",
    "auto",
    "run",
    "now",
    "faults",
]


def fault_spec(data: bytes) -> None:
    """A fault plan as the control API gets it (JSON values) or a file holds it (YAML)."""
    from pushsim import yamlfile
    from simulator.faults.parse import parse_faults
    from simulator.faults.spec import FaultSpecError

    fdp = structured.provider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    lines = None
    if mode == 0:  # text: what a scenario file's faults section says
        try:
            doc, lines = yamlfile.load(fdp.ConsumeBytes(4096).decode("utf-8", "replace"))
        except (yaml.YAMLError, ValueError, RecursionError):
            return
    elif mode == 1:
        doc = structured.value(fdp, FAULT_KEYS)
    else:
        doc = [structured.obj(fdp, FAULT_KEYS) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    try:
        parse_faults(doc, "fuzz", lines=lines, anchor=fdp.PickValueInList(["run", "now"]))
    except FaultSpecError:
        pass


def _fault_seeds() -> list[bytes]:
    """The bundled scenarios' fault plans, as text."""
    out = []
    for raw in _scenario_seeds():
        data = yaml.safe_load(raw[1:])
        if isinstance(data, dict) and data.get("faults"):
            out.append(b"\x00\x00\x00\x00" + yaml.safe_dump(data["faults"]).encode())
    return out


SCENARIO_KEYS = [
    "name",
    "description",
    "duration",
    "drain_timeout",
    "seed",
    "population",
    "devices",
    "users",
    "load",
    "shape",
    "rate_per_user",
    "steady",
    "ramp",
    "spike",
    "traffic",
    "to",
    "user",
    "tokens",
    "topic",
    "topics",
    "payload",
    "small",
    "medium",
    "large",
    "push_type",
    "alert",
    "background",
    "objectives",
    "max_lost",
    "min_delivered_ratio",
    "min_throughput_per_s",
    "max_p99_api_latency_ms",
    "quick",
    "faults",
    "sender",
    "apns",
    "fcm",
    "webpush",
    *FAULT_KEYS,
]


def scenario_file(data: bytes) -> None:
    from loadtests.scenario.check import ScenarioError
    from loadtests.scenario.load import loads

    fdp = structured.provider(data)
    if fdp.ConsumeIntInRange(0, 3) == 0:
        text = fdp.ConsumeBytes(fdp.remaining_bytes()).decode("utf-8", "replace")
    else:
        text = yaml.safe_dump(structured.obj(fdp, SCENARIO_KEYS))
    try:
        loads(text, "fuzz.yaml", quick=fdp.ConsumeBool())
    except ScenarioError:
        pass


def _scenario_seeds() -> list[bytes]:
    from pathlib import Path

    import scenarios

    return [
        b"\x00" + p.read_bytes() for p in sorted(Path(scenarios.__file__).parent.glob("*.yaml"))
    ]


# -- Web Push: decryption and VAPID -----------------------------------------------------


@dataclass
class _Push:
    receiver: Any
    bodies: list[bytes]
    vapid: list[str]


@cache
def _push() -> _Push:
    import http_ece
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from simulator.providers.webpush.crypto import ReceiverKeys

    ua = ec.derive_private_key(11, ec.SECP256R1())
    auth = bytes(range(16))
    receiver = ReceiverKeys.from_private(ua, auth)
    app = ec.derive_private_key(13, ec.SECP256R1())
    bodies = [
        http_ece.encrypt(
            b'{"hello":"world"}',
            salt=bytes(16),
            private_key=app,
            dh=receiver.public_bytes,
            auth_secret=auth,
            version="aes128gcm",
            rs=4096,
        )
    ]
    pub = app.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    k = base64.urlsafe_b64encode(pub).rstrip(b"=").decode()
    pem = app.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    t = jwt.encode(
        {"aud": "https://push.example", "exp": int(time.time()) + 3600, "sub": "mailto:a@b.c"},
        pem,
        algorithm="ES256",
    )
    return _Push(receiver, bodies, [f"vapid t={t}, k={k}", f"WebPush {t}"])


def webpush_decrypt(data: bytes) -> None:
    from simulator.providers.webpush.crypto import DecryptError, decrypt_aes128gcm, decrypt_aesgcm

    push = _push()
    fdp = structured.provider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    try:
        if mode == 2:
            encryption = structured.text(fdp, ["salt=AAAAAAAAAAAAAAAAAAAAAA", "rs=4096"], 60)
            crypto_key = structured.text(fdp, ["dh=" + "B" * 87, "p256ecdsa=x"], 120)
            decrypt_aesgcm(fdp.ConsumeBytes(4096), encryption, crypto_key, push.receiver)
            return
        body = fdp.ConsumeBytes(fdp.remaining_bytes())
        if mode == 1 and body:  # the valid message with these bytes laid over it
            base = bytearray(push.bodies[0])
            at = body[0] % len(base)
            base[at : at + len(body) - 1] = body[1:]
            body = bytes(base)
        decrypt_aes128gcm(body, push.receiver)
    except DecryptError:
        pass


def _push_seeds() -> list[bytes]:
    body = _push().bodies[0]
    return [b"\x00\x00\x00\x00" + body, b"\x01\x00\x00\x00" + body[:40]]


def vapid(data: bytes) -> None:
    from simulator.providers.webpush.vapid import VapidCredentials, VapidVerifier

    push = _push()
    fdp = structured.provider(data)
    authorization = structured.text(fdp, push.vapid, 600)
    crypto_key = structured.text(fdp, ["p256ecdsa=" + push.vapid[0].rsplit("k=", 1)[1]], 200)
    verifier = VapidVerifier()
    creds = verifier.parse(authorization, crypto_key)
    if isinstance(creds, VapidCredentials):
        verifier.check(creds, time.time(), ("https://push.example",))


def _vapid_seeds() -> list[bytes]:
    return [b"\x00\x00\x00\x00" + b"\x00" * 8]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("apns_headers", apns_headers),
        Target("apns_request", apns_request, _apns_seeds),
        Target("fcm_message", fcm_message, _fcm_seeds),
        Target("fault_spec", fault_spec, _fault_seeds),
        Target("scenario_file", scenario_file, _scenario_seeds),
        Target("webpush_decrypt", webpush_decrypt, _push_seeds),
        Target("vapid", vapid, _vapid_seeds),
    )
}
