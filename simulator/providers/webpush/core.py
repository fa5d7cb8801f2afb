"""The Web Push service (RFC 8030) as a pure core: a request in, an action out.

``POST /wp/<subscription id>`` with an encrypted body (RFC 8291) and, for a subscription
bound to an application server key, VAPID (RFC 8292). The order of checks follows what
a push service can know at each step:

1. method and path (405 / 404); the subscription: never issued -> 404, unsubscribed or
   expired -> 404 or 410 per flavour (and noted as a send to a dead token);
2. VAPID: 401 when missing (bound subscription, or a flavour that always requires it),
   403 when invalid, expired, for another origin, or signed by another key than the one
   the subscription was bound to;
3. the per-subscription rate (429 with Retry-After);
4. headers: TTL required (400), Urgency very-low|low|normal|high (400), Topic at most 32
   base64url characters (400);
5. size (413 over 4096 bytes) and decryption with the subscription's keys (400 saying why);
6. 201 Created with ``Location`` (``DELETE`` on it cancels an undelivered message).

What happens next, on the browser's side (delivery, or holding while it is offline), is
:mod:`simulator.providers.webpush.browser`.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

from pushsim.b64 import b64url, b64url_decode
from pushsim.bucket import TokenBuckets
from pushsim.clock import Clock
from simulator.providers.webpush.browser import Browsers, inbox_entry
from simulator.providers.webpush.crypto import (
    AES128GCM,
    AESGCM_LEGACY,
    DecryptError,
    IkmCache,
    ReceiverKeys,
    decrypt_aes128gcm,
    decrypt_aesgcm,
)
from simulator.providers.webpush.flavours import Flavour, flavour
from simulator.providers.webpush.vapid import VapidCheck, VapidVerifier
from simulator.state.devices import Device, DeviceRegistry, TokenState
from simulator.state.stats import Stats
from simulator.wire import Action, Request, Respond

PROVIDER = "webpush"
PATH_PREFIX = "/wp/"
MESSAGE_PREFIX = "/m/"
URGENCIES = ("very-low", "low", "normal", "high")
_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_TTL_RE = re.compile(r"[0-9]{1,12}")


@dataclass
class WebPushConfig:
    """Simulator options for the Web Push service (changeable at run time)."""

    flavour: str = "mozilla"  # mozilla | google | apple
    max_payload: int = 4096
    # Per-subscription token bucket: messages per second and burst; None = unlimited.
    rate_per_second: float | None = None
    rate_burst: int = 10
    # Seconds after minting at which a subscription expires; None = never.
    subscription_lifetime: float | None = None
    max_pending: int = 100  # undelivered messages held per offline browser
    # Reuse ECDH results per (subscription, sender ephemeral key); off = ECDH on every message.
    ecdh_cache: bool = True
    # Overrides of the flavour's 404/410 choice for dead subscriptions.
    unsubscribed_status: int | None = None
    expired_status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "flavour": self.flavour,
            "max_payload": self.max_payload,
            "rate_per_second": self.rate_per_second,
            "rate_burst": self.rate_burst,
            "subscription_lifetime": self.subscription_lifetime,
            "max_pending": self.max_pending,
            "ecdh_cache": self.ecdh_cache,
            "unsubscribed_status": self.unsubscribed_status,
            "expired_status": self.expired_status,
        }


class WebPushCore:
    provider = PROVIDER

    def __init__(
        self,
        registry: DeviceRegistry,
        clock: Clock,
        stats: Stats,
        config: WebPushConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.stats = stats
        self.config = config or WebPushConfig()
        self.rng = rng or random.Random(0)
        self.vapid = VapidVerifier()
        self.ikm_cache = IkmCache()
        self._keys: dict[str, ReceiverKeys] = {}
        self._bound: dict[str, bytes | None] = {}
        self._buckets = TokenBuckets(0.0, 1.0)
        self.browsers = Browsers(PROVIDER, registry, stats)

    # -- answers ----------------------------------------------------------------

    @property
    def flavour(self) -> Flavour:
        return flavour(self.config.flavour)

    def error(
        self, status: int, kind: str, message: str, extra: tuple[tuple[str, str], ...] = ()
    ) -> Respond:
        self.stats.count(PROVIDER, kind)
        ctype, body = self.flavour.error_body(status, kind, message)
        return Respond(status, (("content-type", ctype), *extra), body)

    # -- the endpoint -----------------------------------------------------------

    def handle(self, req: Request) -> Action:
        path = req.path.partition("?")[0]
        if path.startswith(MESSAGE_PREFIX):
            return self._message_resource(req, path[len(MESSAGE_PREFIX) :])
        if not path.startswith(PATH_PREFIX):
            return self.error(404, "bad_path", f"no push resource at {path!r}")
        if req.method != "POST":
            return self.error(405, "method", f"{req.method} is not allowed; send with POST")
        sub_id = path[len(PATH_PREFIX) :]
        now = self.clock.time()
        fl = self.flavour
        dev = self._subscription(sub_id, now, fl)
        if isinstance(dev, Respond):
            return dev

        headers = dict(req.headers)
        vapid = self._check_vapid(req, headers, dev, fl, now)
        if isinstance(vapid, Respond):
            return vapid
        if self.config.rate_per_second is not None:
            limited = self._rate_limited(sub_id)
            if limited is not None:
                return limited

        ttl = self._ttl(headers.get("ttl"), fl)
        if isinstance(ttl, Respond):
            return ttl
        urgency = headers.get("urgency", "normal").strip().lower()
        if urgency not in URGENCIES:
            return self.error(
                400,
                "bad_urgency",
                f"Urgency must be one of {', '.join(URGENCIES)}, got {urgency!r}",
            )
        topic = headers.get("topic")
        if topic is not None and not _TOPIC_RE.fullmatch(topic):
            return self.error(
                400, "bad_topic", "Topic must be 1 to 32 characters of the base64url alphabet"
            )

        body = req.body
        if len(body) > self.config.max_payload:
            return self.error(
                413,
                "too_large",
                f"body is {len(body)} bytes; the limit is {self.config.max_payload}",
            )
        decoded = self._decrypt(headers, body, dev)
        if isinstance(decoded, Respond):
            return decoded
        plaintext, encoding = decoded

        msg_id = b64url(self.rng.randbytes(12))
        entry = inbox_entry(
            PROVIDER, req, headers, msg_id, now, ttl, urgency, topic, encoding, plaintext, vapid
        )
        self.browsers.dispatch(dev, entry, now, ttl, topic, self.config.max_pending)
        origin = (
            f"{req.scheme}://{req.authority}" if req.authority else self.registry.webpush_base_url
        )
        return Respond(
            201,
            (("location", f"{origin}{MESSAGE_PREFIX}{msg_id}"), ("ttl", str(ttl))),
        )

    def _subscription(self, sub_id: str, now: float, fl: Flavour) -> Device | Respond:
        """The live subscription ``sub_id`` names, or 404 / 410 (noting a send to a dead one)."""
        found = self.registry.lookup(PROVIDER, sub_id)
        dev = found.device
        if found.state is TokenState.VALID and dev is not None:
            lifetime = self.config.subscription_lifetime
            if lifetime is not None and now >= dev.created_at + lifetime:
                self.browsers.forget(dev)
                self.registry.uninstall(dev.id, cause="expired", reason="expired")
                found = self.registry.lookup(PROVIDER, sub_id)
        if found.state is TokenState.UNKNOWN or found.device is None:
            return self.error(fl.unknown_status, "not_found", "subscription not found")
        if found.state is TokenState.DEAD:
            self.registry.note_rejection(PROVIDER, sub_id)
            if found.reason == "expired":
                status = self.config.expired_status or fl.expired_status
                return self.error(status, "expired", "push subscription has expired")
            status = self.config.unsubscribed_status or fl.unsubscribed_status
            return self.error(status, "unsubscribed", "push subscription has unsubscribed")
        return found.device

    def _ttl(self, text: str | None, fl: Flavour) -> int | Respond:
        if text is None:
            return self.error(400, "missing_ttl", "missing TTL header")
        text = text.strip()
        if not _TTL_RE.fullmatch(text):
            return self.error(
                400,
                "bad_ttl",
                f"TTL must be a non-negative integer number of seconds, got {text!r}",
            )
        return min(int(text), fl.max_ttl)

    # -- VAPID ------------------------------------------------------------------

    def _bound_key(self, dev: Device) -> bytes | None:
        if dev.token in self._bound:
            return self._bound[dev.token]
        asks = dev.webpush.application_server_key if dev.webpush else None
        raw: bytes | None = None
        if asks:
            try:
                raw = b64url_decode(asks.strip().replace("+", "-").replace("/", "_").rstrip("="))
            except (ValueError, TypeError):
                raw = asks.encode()  # never matches a real key: every send is refused
        self._bound[dev.token] = raw
        return raw

    def _check_vapid(
        self, req: Request, headers: dict[str, str], dev: Device, fl: Flavour, now: float
    ) -> VapidCheck | Respond | None:
        parsed = self.vapid.parse(headers.get("authorization"), headers.get("crypto-key"))
        bound = self._bound_key(dev)
        if parsed is None:
            if bound is not None:
                return self.error(
                    401,
                    "vapid_missing",
                    "VAPID: this subscription is bound to an application server key; "
                    "send Authorization: vapid t=<JWT>, k=<key>",
                )
            if fl.require_vapid:
                return self.error(401, "vapid_missing", "VAPID: Authorization is required")
            return None
        if isinstance(parsed, VapidCheck):
            return self.error(parsed.status, parsed.kind, parsed.message)
        origins = self._origins(req)
        check = self.vapid.check(parsed, now, origins)
        if not check.ok:
            return self.error(check.status, check.kind, check.message)
        if bound is not None and check.key != bound:
            return self.error(
                403,
                "vapid_key_mismatch",
                "VAPID: key k does not match the applicationServerKey "
                "this subscription was created with",
            )
        return check

    def _origins(self, req: Request) -> tuple[str, ...]:
        base = self.registry.webpush_base_url
        if req.authority:
            own = f"{req.scheme}://{req.authority}"
            return (base, own) if base and base != own else (own,)
        return (base,)

    def _rate_limited(self, sub_id: str) -> Respond | None:
        """429 with Retry-After while this subscription is over its rate, else None."""
        wait = self._take_token(sub_id, self.clock.monotonic())
        if wait <= 0:
            return None
        retry = str(max(1, math.ceil(wait)))
        return self.error(
            429,
            "rate_limited",
            f"too many messages to this subscription; retry after {retry} s",
            (("retry-after", retry),),
        )

    def _take_token(self, sub_id: str, mono: float) -> float:
        """Seconds to wait before this subscription may receive again (0: go ahead)."""
        rate = self.config.rate_per_second or 0.0
        burst = float(max(1, self.config.rate_burst))
        buckets = self._buckets
        if buckets.rate != rate or buckets.burst != burst:
            buckets.retune(rate, burst)
        wait = buckets.take(sub_id, mono)
        return 3600.0 if wait == math.inf else wait

    # -- payload ----------------------------------------------------------------

    def _receiver(self, dev: Device) -> ReceiverKeys:
        keys = self._keys.get(dev.token)
        if keys is None:
            wp = dev.webpush
            assert wp is not None
            keys = ReceiverKeys(wp.private_key, b64url_decode(wp.p256dh), b64url_decode(wp.auth))
            if len(self._keys) > 200_000:
                self._keys.clear()
            self._keys[dev.token] = keys
        return keys

    def _ikm(self) -> IkmCache | None:
        return self.ikm_cache if self.config.ecdh_cache else None

    def _decrypt(
        self, headers: dict[str, str], body: bytes, dev: Device
    ) -> tuple[bytes | None, str | None] | Respond:
        encoding = headers.get("content-encoding")
        if not body:
            return None, encoding  # a push without payload (a tickle)
        if encoding is None:
            return self.error(
                400,
                "missing_encoding",
                "a body needs Content-Encoding: aes128gcm (RFC 8291), or the legacy aesgcm",
            )
        encoding = encoding.strip().lower()
        try:
            if encoding == AES128GCM:
                out = decrypt_aes128gcm(body, self._receiver(dev), self._ikm())
            elif encoding == AESGCM_LEGACY:
                out = decrypt_aesgcm(
                    body,
                    headers.get("encryption"),
                    headers.get("crypto-key"),
                    self._receiver(dev),
                    self._ikm(),
                )
            else:
                return self.error(
                    400,
                    "bad_encoding",
                    f"unsupported Content-Encoding {encoding!r}; expected aes128gcm or aesgcm",
                )
        except DecryptError as exc:
            return self.error(400, "decrypt", str(exc))
        return out.plaintext, encoding

    # -- the browser side -------------------------------------------------------

    def device_online(self, dev: Device) -> None:
        """The browser came online: deliver what is still within its TTL, in order."""
        if dev.provider != PROVIDER:
            return
        self.browsers.online(dev, self.clock.time())

    def _message_resource(self, req: Request, msg_id: str) -> Action:
        """RFC 8030 section 7.3: DELETE on the message's Location cancels it if undelivered."""
        if req.method != "DELETE":
            return self.error(405, "method", f"{req.method} is not allowed on a push message")
        if not self.browsers.cancel(msg_id):
            return self.error(404, "bad_path", "no undelivered message with that id")
        return Respond(204)
