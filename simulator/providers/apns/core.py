"""The APNs provider API as a pure core: a request in, an action out.

``POST /3/device/<token>`` with a provider token (JWT) in ``authorization`` or over a
TLS connection presenting a push client certificate; 200 with an empty body and
``apns-id`` (plus ``apns-unique-id`` in the sandbox); errors as ``{"reason": ...}``
(410 adds ``timestamp`` in ms). One :class:`ApnsCore` serves one environment
(production or sandbox); both share an :class:`ApnsState` (keys, teams, expired
tokens); each keeps its own per-device rate buckets (a device token belongs to one
environment).

Checks, in order: the operator switches (``fail_with``, ``draining``), path and method,
the ``apns-*`` headers (:mod:`simulator.providers.apns.headers`), authentication
(certificate or provider token, :mod:`simulator.providers.apns.auth`), topic ownership, payload,
device token (registry ground truth), per-device rate; then delivery, or storage while
the device is offline (only the latest notification per app, honouring
``apns-expiration``).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pushsim.bucket import TokenBuckets
from pushsim.clock import Clock
from simulator.providers.apns.auth import ConnectionAuth, ProviderTokenVerifier
from simulator.providers.apns.certs import identify
from simulator.providers.apns.headers import (
    MAX_STORE_SECONDS,
    HeaderError,
    Notification,
    canonical_apns_id,
    parse_headers,
)
from simulator.providers.apns.streams import follow_answer, grant
from simulator.state.devices import Device, DeviceRegistry, TokenState, find_correlation
from simulator.state.stats import Stats
from simulator.wire import Action, GoAway, Request, Respond

PATH_PREFIX = "/3/device/"
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
SHUTDOWN_DEBUG = b'{"reason":"Shutdown"}'
IDLE_DEBUG = b'{"reason":"IdleTimeout"}'
# GOAWAY debug data to a client over an acknowledged stream limit, as APNs words it
STREAMS_VIOLATED_DEBUG = b"Maximum active streams violated for this endpoint."

_JSON = ("content-type", "application/json")
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass
class ApnsConfig:
    """Operator-tunable behaviour of one APNs environment (changeable at run time)."""

    environment: str = "production"  # production | sandbox
    max_concurrent_streams: int = 1000  # granted after the first valid token or certificate
    # After a rejected notification the connection's limit drops to 1 until the next
    # accepted one, as APNs does (Apple radar 27870881).
    narrow_after_rejection: bool = True
    token_update_min_interval: float = 1200.0  # 0 relaxes TooManyProviderTokenUpdates
    device_rate: float = 100.0  # notifications per second one device token may receive...
    device_burst: float = 300.0  # ...with this burst; device_rate 0 disables TooManyRequests
    fail_with: int | None = (
        None  # 500 or 503: every request answers InternalServerError / ServiceUnavailable
    )
    draining: bool = False  # answer 503 Shutdown and GOAWAY, as an APNs node leaving service


@dataclass
class ApnsState:
    """What both environments share."""

    verifier: ProviderTokenVerifier
    expired_tokens: set[str] = field(default_factory=set)  # tokens answering 410 ExpiredToken


class ApnsCore:
    provider = "apns"

    def __init__(
        self,
        registry: DeviceRegistry,
        verifier: ProviderTokenVerifier,
        clock: Clock,
        stats: Stats,
        config: ApnsConfig | None = None,
        *,
        state: ApnsState | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.registry = registry
        self.verifier = verifier
        self.clock = clock
        self.stats = stats
        self.config = config or ApnsConfig()
        self.state = state or ApnsState(verifier)
        self.rng = rng or random.Random()
        self._sandbox = self.config.environment == "sandbox"
        self._device_buckets = TokenBuckets(
            self.config.device_rate, self.config.device_burst, max_keys=200_000
        )
        # In a worker process: accepted notifications go to the main process, which owns devices.
        self.forward: Callable[[Device, dict[str, Any]], None] | None = None

    # -- responses --------------------------------------------------------------

    def error(
        self, status: int, reason: str, apns_id: str, timestamp_ms: int | None = None
    ) -> Respond:
        self.stats.count(self.provider, reason)
        if timestamp_ms is None:
            body = b'{"reason":"' + reason.encode() + b'"}'
        else:
            body = json.dumps(
                {"reason": reason, "timestamp": timestamp_ms}, separators=(",", ":")
            ).encode()
        return Respond(status, (_JSON, ("apns-id", apns_id)), body)

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # -- the request ----------------------------------------------------------------

    def handle(self, req: Request) -> Action:
        action = self._answer(req)
        cfg = self.config
        if cfg.narrow_after_rejection and isinstance(action, Respond):
            auth = req.conn.state.get("apns")
            follow_answer(auth, req.conn, action.status, cfg.max_concurrent_streams)
        return action

    def _answer(self, req: Request) -> Action:
        cfg = self.config
        if cfg.fail_with is not None or cfg.draining:
            return self._operator_failure(req)

        parsed = parse_headers(req.headers)
        if type(parsed) is HeaderError:
            # APNs echoes the request's apns-id on every error it can (not on BadMessageId).
            sent = req.header("apns-id")
            echo = canonical_apns_id(sent) if sent is not None else None
            return self.error(parsed.status, parsed.reason, echo or self._new_id())
        assert isinstance(parsed, Notification)
        apns_id = parsed.apns_id or self._new_id()

        path = req.path
        if not path.startswith(PATH_PREFIX):
            return self.error(404, "BadPath", apns_id)
        if req.method != "POST":
            return self.error(405, "MethodNotAllowed", apns_id)
        token = path[10:]
        if not token:
            return self.error(400, "MissingDeviceToken", apns_id)

        now = self.clock.time()
        failure = self._authenticate(req, parsed, now, apns_id)
        if failure is not None:
            return failure
        payload = self._payload(req.body, parsed, apns_id)
        if type(payload) is Respond:
            return payload
        assert isinstance(payload, dict)
        dev = self._recipient(token, parsed, apns_id)
        if type(dev) is Respond:
            return dev
        assert isinstance(dev, Device)

        self._accept(dev, parsed, apns_id, payload, now)
        if self._sandbox:
            return Respond(200, (("apns-id", apns_id), ("apns-unique-id", self._new_id())))
        return Respond(200, (("apns-id", apns_id),))

    def _payload(self, body: bytes, note: Notification, apns_id: str) -> dict[str, Any] | Respond:
        """The JSON payload, or APNs' answer to a missing, oversized or malformed one."""
        if not body:
            return self.error(400, "PayloadEmpty", apns_id)
        if len(body) > (MAX_VOIP_PAYLOAD if note.push_type == "voip" else MAX_PAYLOAD):
            return self.error(413, "PayloadTooLarge", apns_id)
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return self.error(400, "BadPayload", apns_id)
        if type(payload) is not dict:
            return self.error(400, "BadPayload", apns_id)
        if note.push_type != "mdm" and type(payload.get("aps")) is not dict:
            return self.error(400, "PayloadEmpty", apns_id)
        return payload

    def _recipient(self, token: str, note: Notification, apns_id: str) -> Device | Respond:
        """The device behind ``token`` (registry ground truth), within its rate; or why not."""
        if len(token) != 64 or not _HEX.issuperset(token):
            return self.error(400, "BadDeviceToken", apns_id)
        token = token.lower()
        found = self.registry.lookup("apns", token)
        dev = found.device
        if found.state is not TokenState.VALID or dev is None:
            if found.state is TokenState.DEAD and dev is not None:
                self.registry.note_rejection("apns", token)
                if token in self.state.expired_tokens:
                    return self.error(410, "ExpiredToken", apns_id)
                return self.error(410, "Unregistered", apns_id, found.died_at_ms)
            return self.error(400, "BadDeviceToken", apns_id)
        if (dev.environment == "sandbox") is not self._sandbox:
            return self.error(400, "BadDeviceToken", apns_id)
        if note.bundle_id is not None and dev.app != note.bundle_id:
            return self.error(400, "DeviceTokenNotForTopic", apns_id)
        if self.config.device_rate > 0 and not self._allow_device(token):
            return self.error(429, "TooManyRequests", apns_id)
        return dev

    def _operator_failure(self, req: Request) -> Action:
        sent = req.header("apns-id")
        apns_id = (canonical_apns_id(sent) if sent is not None else None) or self._new_id()
        if self.config.draining:
            resp = self.error(503, "Shutdown", apns_id)
            return GoAway(0, SHUTDOWN_DEBUG, req.stream_id, resp)
        if self.config.fail_with == 500:
            return self.error(500, "InternalServerError", apns_id)
        return self.error(503, "ServiceUnavailable", apns_id)

    # -- authentication -----------------------------------------------------------

    def _authenticate(
        self, req: Request, note: Notification, now: float, apns_id: str
    ) -> Respond | None:
        conn_state = req.conn.state
        auth: ConnectionAuth | None = conn_state.get("apns")
        if auth is None:
            auth = conn_state["apns"] = ConnectionAuth()
        if not auth.cert_checked:
            self._check_certificate(auth, req.conn.peer_cert_der)
        if auth.cert_error:
            return self.error(403, auth.cert_error, apns_id)
        cert = auth.cert
        if cert is None:
            return self._check_provider_token(req, note, auth, now, apns_id)
        # Certificate auth: the topic defaults to the certificate's bundle id.
        if note.bundle_id is None:
            note.bundle_id = cert.bundle_id
        elif note.bundle_id != cert.bundle_id:
            return self.error(400, "TopicDisallowed", apns_id)
        grant(auth, req.conn, self.config.max_concurrent_streams)
        return None

    def _check_certificate(self, auth: ConnectionAuth, peer_cert_der: bytes | None) -> None:
        """Identify the connection's client certificate, once per connection."""
        auth.cert_checked = True
        if peer_cert_der:
            auth.cert = identify(peer_cert_der)
            if auth.cert is None:
                auth.cert_error = "BadCertificate"
            elif self.config.environment not in auth.cert.environments:
                auth.cert_error = "BadCertificateEnvironment"

    def _check_provider_token(
        self, req: Request, note: Notification, auth: ConnectionAuth, now: float, apns_id: str
    ) -> Respond | None:
        header = note.authorization
        if header is None:
            return self.error(403, "MissingProviderToken", apns_id)
        if header[:7].lower() != "bearer " or len(header) < 8:
            return self.error(403, "InvalidProviderToken", apns_id)
        jwt_text = header[7:].strip()
        check = self.verifier.check(jwt_text, now, self.config.environment)
        if check.reason:
            return self.error(403, check.reason, apns_id)
        if jwt_text != auth.token:
            interval = self.config.token_update_min_interval
            if auth.token and interval > 0 and now - auth.token_since < interval:
                return self.error(429, "TooManyProviderTokenUpdates", apns_id)
            auth.token = jwt_text
            auth.token_since = now
            auth.team_id = check.team_id
        grant(auth, req.conn, self.config.max_concurrent_streams)
        if note.topic is None:
            return self.error(400, "MissingTopic", apns_id)
        assert note.bundle_id is not None
        if self.verifier.owner_of(note.bundle_id) != check.team_id:
            return self.error(400, "TopicDisallowed", apns_id)
        return None

    # -- per-device rate ------------------------------------------------------------

    def _allow_device(self, token: str) -> bool:
        cfg = self.config
        buckets = self._device_buckets
        if buckets.rate != cfg.device_rate or buckets.burst != cfg.device_burst:
            buckets.retune(cfg.device_rate, cfg.device_burst)
        return buckets.take(token, self.clock.monotonic()) == 0.0

    # -- the device side ------------------------------------------------------------

    def _accept(
        self,
        dev: Device,
        note: Notification,
        apns_id: str,
        payload: dict[str, Any],
        now: float,
    ) -> None:
        entry: dict[str, Any] = {
            "provider": "apns",
            "message_id": apns_id,
            "at": now,
            "push_type": note.push_type,
            "priority": note.priority,
            "topic": note.topic,
            "payload": payload,
        }
        if note.collapse_id is not None:
            entry["collapse_id"] = note.collapse_id
        if note.expiration is not None:
            entry["expiration"] = note.expiration
        corr = find_correlation(payload)
        if corr:
            entry["correlation_id"] = corr
        aps = payload.get("aps")
        if note.push_type == "background" and not (
            type(aps) is dict and aps.get("content-available") == 1
        ):
            entry["woke_app"] = False  # a background push without content-available wakes nothing
        self.route(dev, entry, note.expiration, now)

    def route(self, dev: Device, entry: dict[str, Any], exp: int | None, now: float) -> None:
        """Deliver now, or store while the device is offline."""
        if self.forward is not None:
            self.forward(dev, entry)
            return
        if dev.online:
            self.deliver(dev, entry)
            self.stats.count(self.provider, "delivered")
            return
        # Offline: APNs keeps only the latest notification per app, and none with expiration 0.
        if exp is not None and exp <= now:
            self.stats.count(self.provider, "discarded_offline")
            return
        limit = now + MAX_STORE_SECONDS
        entry["expires_at"] = min(float(exp), limit) if exp is not None else limit
        if dev.pending:
            self.stats.count(self.provider, "replaced_offline", len(dev.pending))
        dev.pending[:] = [entry]
        self.stats.count(self.provider, "stored")

    def deliver(self, dev: Device, entry: dict[str, Any]) -> None:
        collapse = entry.get("collapse_id")
        if collapse is not None:
            for old in reversed(dev.inbox):
                if old.get("collapse_id") == collapse and "replaced_by" not in old:
                    old["replaced_by"] = entry["message_id"]
                    break
        self.registry.deliver(dev, entry)

    def flush_stored(self, dev: Device) -> int:
        """The device came online: deliver what APNs stored for it (if not expired)."""
        if dev.provider != "apns" or not dev.pending:
            return 0
        now = self.clock.time()
        pending, dev.pending[:] = list(dev.pending), []
        n = 0
        for entry in pending:
            if entry.get("expires_at", now) < now:
                self.stats.count(self.provider, "expired_offline")
                continue
            self.deliver(dev, entry)
            self.stats.count(self.provider, "delivered")
            n += 1
        return n
