"""The APNs provider API as a pure core: a request in, an action out.

``POST /3/device/<token>`` with a provider token (JWT) in ``authorization``; 200 with an
empty body and ``apns-id``; errors as ``{"reason": ...}`` (410 adds ``timestamp`` in ms).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from simulator.apns_auth import ProviderTokenVerifier
from simulator.clock import Clock
from simulator.devices import DeviceRegistry, TokenState
from simulator.stats import Stats
from simulator.wire import Action, Request, Respond

PATH_PREFIX = "/3/device/"
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120

_JSON = ("content-type", "application/json")


@dataclass
class ApnsConfig:
    environment: str = "production"  # production | sandbox


def _is_hex_token(token: str) -> bool:
    if len(token) != 64:
        return False
    try:
        int(token, 16)
    except ValueError:
        return False
    return True


class ApnsCore:
    provider = "apns"

    def __init__(
        self,
        registry: DeviceRegistry,
        verifier: ProviderTokenVerifier,
        clock: Clock,
        stats: Stats,
        config: ApnsConfig | None = None,
    ) -> None:
        self.registry = registry
        self.verifier = verifier
        self.clock = clock
        self.stats = stats
        self.config = config or ApnsConfig()

    def error(self, status: int, reason: str, apns_id: str, timestamp_ms: int | None = None) -> Respond:
        self.stats.count(self.provider, reason)
        if timestamp_ms is None:
            body = b'{"reason":"' + reason.encode() + b'"}'
        else:
            body = json.dumps({"reason": reason, "timestamp": timestamp_ms}, separators=(",", ":")).encode()
        return Respond(status, (_JSON, ("apns-id", apns_id)), body)

    def handle(self, req: Request) -> Action:
        apns_id = req.header("apns-id")
        if apns_id is None:
            apns_id = str(uuid.uuid4())
        else:
            try:
                parsed = uuid.UUID(apns_id)
            except ValueError:
                return self.error(400, "BadMessageId", str(uuid.uuid4()))
            if str(parsed) != apns_id.lower():
                return self.error(400, "BadMessageId", str(uuid.uuid4()))
            apns_id = apns_id.lower()

        path = req.path
        if not path.startswith(PATH_PREFIX):
            return self.error(404, "BadPath", apns_id)
        if req.method != "POST":
            return self.error(405, "MethodNotAllowed", apns_id)
        token = path[len(PATH_PREFIX) :]
        if not token:
            return self.error(400, "MissingDeviceToken", apns_id)

        now = self.clock.time()
        auth = req.header("authorization")
        if auth is None:
            return self.error(403, "MissingProviderToken", apns_id)
        scheme, _, jwt_text = auth.partition(" ")
        if scheme.lower() != "bearer" or not jwt_text:
            return self.error(403, "InvalidProviderToken", apns_id)
        check = self.verifier.check(jwt_text.strip(), now)
        if check.reason:
            return self.error(403, check.reason, apns_id)

        body = req.body
        if not body:
            return self.error(400, "PayloadEmpty", apns_id)
        limit = MAX_VOIP_PAYLOAD if req.header("apns-push-type") == "voip" else MAX_PAYLOAD
        if len(body) > limit:
            return self.error(413, "PayloadTooLarge", apns_id)

        if not _is_hex_token(token):
            return self.error(400, "BadDeviceToken", apns_id)
        found = self.registry.lookup("apns", token.lower())
        if found.state is TokenState.UNKNOWN or found.device is None:
            return self.error(400, "BadDeviceToken", apns_id)
        if found.state is TokenState.DEAD:
            self.registry.note_rejection("apns", token.lower())
            return self.error(410, "Unregistered", apns_id, found.died_at_ms)
        dev = found.device
        if dev.environment != self.config.environment:
            return self.error(400, "BadDeviceToken", apns_id)

        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        entry = {
            "provider": "apns",
            "message_id": apns_id,
            "headers": {k: v for k, v in req.headers if k.startswith("apns-")},
            "payload": payload,
        }
        if isinstance(payload, dict):
            from simulator.devices import find_correlation

            corr = find_correlation(payload)
            if corr:
                entry["correlation_id"] = corr
        self.registry.deliver(dev, entry)
        self.stats.count(self.provider, "delivered")
        return Respond(200, (("apns-id", apns_id),))
