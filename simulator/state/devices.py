"""Simulated devices: the ground truth of which tokens are valid and what each device received.

The registry is pure state (no I/O). It is driven by the control API (mint, uninstall,
rotate, offline/online), by the fault plan (token churn) and by the provider cores
(delivery). Time comes from an injected clock and token material from a seeded RNG, so
one seed mints the same tokens.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushsim.b64 import b64url
from pushsim.clock import Clock
from simulator.state.credentials import BUNDLE_ID, FCM_PROJECT_ID

PROVIDERS = ("apns", "fcm", "webpush")

_FCM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class TokenState(enum.Enum):
    VALID = "valid"
    DEAD = "dead"  # issued, then the app was uninstalled or reinstalled
    UNKNOWN = "unknown"  # never issued here (or malformed)


@dataclass(slots=True)
class TokenLookup:
    state: TokenState
    device: Device | None = None
    died_at_ms: int | None = None
    reason: str = ""


@dataclass(slots=True)
class WebPushKeys:
    """The browser side of a subscription: the private key and auth secret it keeps."""

    private_key: ec.EllipticCurvePrivateKey
    p256dh: str  # base64url uncompressed public point
    auth: str  # base64url 16-byte secret
    application_server_key: str | None = None  # VAPID key the subscription is bound to


@dataclass(slots=True)
class Device:
    id: str
    provider: str
    token: str  # APNs hex token, FCM registration token, or Web Push subscription id
    app: str  # APNs bundle id, FCM project id, or Web Push origin
    environment: str = "production"  # APNs: production | sandbox
    installed: bool = True
    online: bool = True
    generation: int = 0
    created_at: float = 0.0
    webpush: WebPushKeys | None = None
    inbox: list[dict[str, Any]] = field(default_factory=list)
    # Provider-specific store-and-forward queue while offline.
    pending: list[dict[str, Any]] = field(default_factory=list)
    topics: set[str] = field(default_factory=set)
    meta: dict[str, Any] = field(default_factory=dict)


class DeviceRegistry:
    """All simulated devices, their tokens (live and dead), inboxes, and the token feed."""

    def __init__(self, clock: Clock, rng: random.Random, webpush_base_url: str = "") -> None:
        self.clock = clock
        self.rng = rng
        self.webpush_base_url = webpush_base_url
        self.devices: dict[str, Device] = {}
        self._live: dict[tuple[str, str], Device] = {}
        self._dead: dict[tuple[str, str], tuple[Device, int, str]] = {}
        self._next_id = 1
        self.feed: deque[dict[str, Any]] = deque(maxlen=200_000)
        self._feed_seq = 0
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=1_000_000)
        self._delivery_seq = 0
        # (provider, token) -> sends to a dead token: first/last time answered, count
        self.rejections: dict[tuple[str, str], dict[str, Any]] = {}

    # -- minting ----------------------------------------------------------------

    def _new_token(self, provider: str) -> str:
        r = self.rng
        if provider == "apns":
            return r.randbytes(32).hex()
        if provider == "fcm":
            head = "".join(r.choice(_FCM_ALPHABET) for _ in range(22))
            tail = "".join(r.choice(_FCM_ALPHABET) for _ in range(134))
            return f"{head}:APA91b{tail}"
        if provider == "webpush":
            return b64url(r.randbytes(24))
        raise ValueError(f"unknown provider {provider!r}")

    def _new_webpush_keys(self, application_server_key: str | None) -> WebPushKeys:
        # Key material from the seeded RNG so one seed mints the same subscriptions.
        scalar = (
            int.from_bytes(self.rng.randbytes(32), "big")
            % (0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551 - 1)
            + 1
        )
        key = ec.derive_private_key(scalar, ec.SECP256R1())
        pub = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return WebPushKeys(key, b64url(pub), b64url(self.rng.randbytes(16)), application_server_key)

    def mint(
        self,
        provider: str,
        count: int = 1,
        *,
        app: str | None = None,
        environment: str = "production",
        application_server_key: str | None = None,
    ) -> list[Device]:
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
        out = []
        for _ in range(count):
            dev_id = f"{provider}-{self._next_id}"
            self._next_id += 1
            default_app = {
                "apns": BUNDLE_ID,
                "fcm": FCM_PROJECT_ID,
                "webpush": "https://app.example.com",
            }[provider]
            dev = Device(
                id=dev_id,
                provider=provider,
                token=self._new_token(provider),
                app=app or default_app,
                environment=environment,
                created_at=self.clock.time(),
            )
            if provider == "webpush":
                dev.webpush = self._new_webpush_keys(application_server_key)
            self.devices[dev_id] = dev
            self._live[(provider, dev.token)] = dev
            out.append(dev)
        return out

    # -- lifecycle --------------------------------------------------------------

    def _kill_token(self, dev: Device, reason: str) -> None:
        key = (dev.provider, dev.token)
        self._live.pop(key, None)
        self._dead[key] = (dev, int(self.clock.time() * 1000), reason)

    def uninstall(
        self, device_id: str, cause: str = "control", reason: str = "uninstalled"
    ) -> Device:
        """The token dies; ``reason`` "expired" marks a Web Push subscription that timed out."""
        dev = self.devices[device_id]
        if dev.installed:
            self._kill_token(dev, reason)
            dev.installed = False
            dev.pending.clear()
            self._announce(dev, reason, dev.token, None, cause)
        return dev

    def rotate(self, device_id: str, cause: str = "control") -> Device:
        """Reinstall: the old token dies and a new one is issued."""
        dev = self.devices[device_id]
        old = dev.token
        if dev.installed:
            self._kill_token(dev, "rotated")
        dev.token = self._new_token(dev.provider)
        dev.generation += 1
        dev.installed = True
        dev.pending.clear()
        dev.topics.clear()
        if dev.provider == "webpush":
            asks = dev.webpush.application_server_key if dev.webpush else None
            dev.webpush = self._new_webpush_keys(asks)
        self._live[(dev.provider, dev.token)] = dev
        self._announce(dev, "rotated", old, dev.token, cause)
        return dev

    def _announce(self, dev: Device, event: str, old: str, new: str | None, cause: str) -> None:
        self._feed_seq += 1
        self.feed.append(
            {
                "seq": self._feed_seq,
                "at": self.clock.time(),
                "event": event,
                "cause": cause,
                "device_id": dev.id,
                "provider": dev.provider,
                "old_token": old,
                "new_token": new,
            }
        )

    def feed_since(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        return [e for e in self.feed if e["seq"] > seq][:limit]

    # -- lookups ----------------------------------------------------------------

    def lookup(self, provider: str, token: str) -> TokenLookup:
        dev = self._live.get((provider, token))
        if dev is not None:
            return TokenLookup(TokenState.VALID, dev)
        dead = self._dead.get((provider, token))
        if dead is not None:
            return TokenLookup(TokenState.DEAD, dead[0], dead[1], dead[2])
        return TokenLookup(TokenState.UNKNOWN)

    def note_rejection(self, provider: str, token: str) -> None:
        """A provider core answered a send to a dead token (Unregistered / 410 ...).

        The harness reads these to measure wasted sends and how fast a sender prunes.
        """
        now = self.clock.time()
        rec = self.rejections.get((provider, token))
        if rec is None:
            dead = self._dead.get((provider, token))
            self.rejections[(provider, token)] = {
                "provider": provider,
                "token": token,
                "device_id": dead[0].id if dead else None,
                "died_at": dead[1] / 1000 if dead else None,
                "first_rejected_at": now,
                "last_rejected_at": now,
                "count": 1,
            }
        else:
            rec["last_rejected_at"] = now
            rec["count"] += 1

    def live_devices(self, provider: str | None = None) -> list[Device]:
        return [
            d
            for d in self.devices.values()
            if d.installed and (provider is None or d.provider == provider)
        ]

    # -- delivery ---------------------------------------------------------------

    def deliver(self, dev: Device, entry: dict[str, Any]) -> None:
        """Record that ``dev`` saw a message now (ground truth for the harness)."""
        now = self.clock.time()
        entry.setdefault("at", now)
        entry["delivered_at"] = now
        entry.setdefault("token", dev.token)
        dev.inbox.append(entry)
        if len(dev.inbox) > 1000:
            del dev.inbox[: len(dev.inbox) - 1000]
        self._delivery_seq += 1
        self.deliveries.append(
            {
                "seq": self._delivery_seq,
                "at": now,
                "device_id": dev.id,
                "provider": dev.provider,
                "token": entry["token"],
                "message_id": entry.get("message_id"),
                "correlation_id": entry.get("correlation_id"),
            }
        )

    def deliveries_since(self, seq: int, limit: int = 10_000) -> list[dict[str, Any]]:
        if not self.deliveries or seq >= self._delivery_seq:
            return []
        first = self.deliveries[0]["seq"]
        start = max(0, seq - first + 1)
        out = []
        for i in range(start, min(len(self.deliveries), start + limit)):
            out.append(self.deliveries[i])
        return out

    @property
    def delivery_seq(self) -> int:
        return self._delivery_seq


def describe(dev: Device, webpush_base_url: str) -> dict[str, Any]:
    """The device as the control API shows it.

    A ``webpush_base_url`` ending in ``/`` is the whole prefix of a subscription's endpoint
    (a real push service's, as ``pushsim simulator --real-hosts`` hands out); otherwise the
    endpoint is the Web Push listener's ``/wp/<token>``.
    """
    out: dict[str, Any] = {
        "id": dev.id,
        "provider": dev.provider,
        "app": dev.app,
        "installed": dev.installed,
        "online": dev.online,
        "generation": dev.generation,
    }
    if dev.provider == "apns":
        out["token"] = dev.token
        out["bundle_id"] = dev.app
        out["environment"] = dev.environment
    elif dev.provider == "fcm":
        out["token"] = dev.token
        out["project_id"] = dev.app
    else:
        assert dev.webpush is not None
        out["token"] = dev.token
        out["subscription"] = {
            "endpoint": (
                f"{webpush_base_url}{dev.token}"
                if webpush_base_url.endswith("/")
                else f"{webpush_base_url}/wp/{dev.token}"
            ),
            "expirationTime": None,
            "keys": {"p256dh": dev.webpush.p256dh, "auth": dev.webpush.auth},
        }
    return out


def find_correlation(payload: Any) -> str | None:
    """A correlation id the harness planted in a message's data, wherever the provider put it."""
    if isinstance(payload, dict):
        for key in ("correlation_id", "pushsim_correlation_id"):
            v = payload.get(key)
            if isinstance(v, str):
                return v
        for v in payload.values():
            if isinstance(v, dict):
                found = find_correlation(v)
                if found:
                    return found
    return None
