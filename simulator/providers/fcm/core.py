"""FCM HTTP v1 ``messages:send`` as a pure core: a request in, a response out.

``POST /v1/projects/{project}/messages:send`` with ``Authorization: Bearer <access token>``
(from :mod:`simulator.providers.fcm.oauth`) and ``{"validate_only": bool, "message": {...}}``;
success is ``{"name": "projects/{project}/messages/{id}"}``. Errors are google.rpc.Status
bodies with the FcmError detail (:mod:`simulator.providers.fcm.errors`):

- INVALID_ARGUMENT: schema violations (:mod:`simulator.providers.fcm.message`) and tokens
  never issued;
- UNREGISTERED: tokens whose app was uninstalled or reinstalled;
- SENDER_ID_MISMATCH: a token minted for another project;
- THIRD_PARTY_AUTH_ERROR: an APNs (or Web Push) delivery for a project configured without
  APNs (Web Push) credentials (``ProjectSettings``);
- QUOTA_EXCEEDED: the quotas of :mod:`simulator.providers.fcm.quota`, with an honest Retry-After;
- INTERNAL / UNAVAILABLE (and any other code): forced through :class:`ForcedErrors`.

A token message goes to its device (:mod:`simulator.providers.fcm.delivery`); a topic or condition
message fans out to every matching device of the project (:mod:`simulator.providers.fcm.topics`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pushsim.clock import Clock
from simulator.providers.fcm.delivery import DeviceSide
from simulator.providers.fcm.errors import (
    ERROR_CODES,
    SCOPE_INSUFFICIENT,
    UNAUTHENTICATED_EXPIRED,
    UNAUTHENTICATED_INVALID,
    UNAUTHENTICATED_MISSING,
    FcmError,
    bad_json,
    fcm_error_response,
    invalid,
    permission_denied,
)
from simulator.providers.fcm.message import MessageInvalid, Outbound, validate_message
from simulator.providers.fcm.oauth import AccessGrant, AccessTokens
from simulator.providers.fcm.quota import Quotas
from simulator.providers.fcm.topics import TopicIndex, parse_condition
from simulator.state.devices import Device, DeviceRegistry, TokenState, find_correlation
from simulator.state.stats import Stats
from simulator.wire import Request, Respond

PROVIDER = "fcm"
_JSON = (("content-type", "application/json; charset=UTF-8"),)
_INVALID_TOKEN = "The registration token is not a valid FCM registration token"


@dataclass
class ProjectSettings:
    """Per-project switches: which third-party credentials the project has uploaded."""

    apns_credentials: bool = True
    webpush_credentials: bool = True


@dataclass
class ForcedError:
    """Answer the next ``count`` sends (optionally only to ``token``) with ``code``."""

    code: str
    count: int = 1
    retry_after: float | None = None
    token: str | None = None
    message: str = ""


@dataclass
class ForcedErrors:
    queue: list[ForcedError] = field(default_factory=list)

    def add(self, err: ForcedError) -> None:
        if err.code not in ERROR_CODES:
            raise ValueError(f"errorCode must be one of {', '.join(ERROR_CODES)}")
        if err.count < 1:
            raise ValueError("count must be at least 1")
        self.queue.append(err)

    def take(self, token: str | None) -> FcmError | None:
        for i, forced in enumerate(self.queue):
            if forced.token is None or forced.token == token:
                forced.count -= 1
                if forced.count <= 0:
                    del self.queue[i]
                retry = forced.retry_after
                if retry is None and forced.code in ("UNAVAILABLE", "QUOTA_EXCEEDED"):
                    retry = 1.0
                return FcmError(forced.code, forced.message, retry_after=retry)
        return None


def bearer_token(req: Request) -> str | None:
    auth = req.header("authorization")
    if auth is None or len(auth) < 8 or auth[:7].lower() != "bearer ":
        return None
    return auth[7:].strip()


class FcmCore:
    def __init__(
        self,
        registry: DeviceRegistry,
        tokens: AccessTokens,
        clock: Clock,
        stats: Stats,
        *,
        topics: TopicIndex | None = None,
        quotas: Quotas | None = None,
        devices: DeviceSide | None = None,
    ) -> None:
        self.registry = registry
        self.tokens = tokens
        self.clock = clock
        self.stats = stats
        self.topics = topics or TopicIndex()
        self.quotas = quotas or Quotas()
        self.devices = devices or DeviceSide(registry, clock, stats)
        self.projects: dict[str, ProjectSettings] = {}
        self.forced = ForcedErrors()
        self.enforce_expiry = True  # False: expired access tokens still work (auth fault "relaxed")
        self._seq = 0

    # -- authentication -----------------------------------------------------------

    def authenticate(self, req: Request) -> AccessGrant | Respond:
        """The access token's grant, or the 401 FCM answers without a usable one."""
        token = bearer_token(req)
        if token is None:
            self.stats.count(PROVIDER, "UNAUTHENTICATED")
            return UNAUTHENTICATED_MISSING
        grant = self.tokens.get(token)
        if grant is None:
            self.stats.count(PROVIDER, "UNAUTHENTICATED")
            return UNAUTHENTICATED_INVALID
        if grant.expires_at <= self.clock.time() and self.enforce_expiry:
            self.stats.count(PROVIDER, "UNAUTHENTICATED")
            return UNAUTHENTICATED_EXPIRED
        return grant

    def settings(self, project: str) -> ProjectSettings:
        s = self.projects.get(project)
        return s if s is not None else ProjectSettings()

    # -- messages:send ------------------------------------------------------------

    def fail(self, err: FcmError) -> Respond:
        self.stats.count(PROVIDER, err.code)
        return fcm_error_response(err)

    def send(self, req: Request, project: str) -> Respond:
        prepared = self.prepare(req, project)
        if isinstance(prepared, Respond):
            return prepared
        out, validate_only = prepared
        return self.decide(project, out, validate_only)

    def prepare(self, req: Request, project: str) -> tuple[Outbound, bool] | Respond:
        """The half of a send that needs no ground truth: the access token, the JSON and
        the message schema; the validated message and ``validate_only``, or the answer.

        ``pushsim simulator --workers N`` runs this half in the process that read the
        request and :meth:`decide` where the devices, topics and quotas live."""
        auth = self.authenticate(req)
        if isinstance(auth, Respond):
            return auth
        if not auth.may_send:
            self.stats.count(PROVIDER, "PERMISSION_DENIED")
            return SCOPE_INSUFFICIENT
        if auth.project_id != project:
            self.stats.count(PROVIDER, "PERMISSION_DENIED")
            return permission_denied(project)
        try:
            body = json.loads(req.body) if req.body else {}
        except (ValueError, RecursionError):
            self.stats.count(PROVIDER, "INVALID_ARGUMENT")
            return bad_json("Invalid JSON payload received. Unexpected token.")
        if not isinstance(body, dict):
            self.stats.count(PROVIDER, "INVALID_ARGUMENT")
            return bad_json("Invalid JSON payload received. Expected an object at the top level.")
        for key in body:
            if key not in ("message", "validate_only", "validateOnly"):
                self.stats.count(PROVIDER, "INVALID_ARGUMENT")
                return bad_json(
                    f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                )
        validate_only = body.get("validate_only", body.get("validateOnly", False))
        if not isinstance(validate_only, bool):
            return self.fail(
                invalid(
                    f"Invalid value at 'validate_only' (TYPE_BOOL), {json.dumps(validate_only)}",
                    "validate_only",
                )
            )
        message = body.get("message")
        if message is None:
            return self.fail(
                invalid("Request contains an invalid argument: message is required.", "message")
            )
        try:
            out = validate_message(message, len(req.body))
        except MessageInvalid as exc:
            return self.fail(exc.error)
        return out, validate_only

    def decide(self, project: str, out: Outbound, validate_only: bool) -> Respond:
        """The half of a send against the ground truth: forced errors, the device or the
        topic's subscribers, the quotas, delivery."""
        if self.forced.queue:
            forced = self.forced.take(out.value if out.target == "token" else None)
            if forced is not None:
                return self.fail(forced)

        if out.target == "token" or out.target == "fid":
            return self._send_to_token(project, out, validate_only)
        return self._send_to_topic(project, out, validate_only)

    def _third_party_problem(
        self, project: str, out: Outbound, dev: Device | None
    ) -> FcmError | None:
        settings = self.projects.get(project)
        if settings is None:
            return None
        platform = dev.meta.get("platform") if dev is not None else None
        if not settings.apns_credentials and (
            platform == "ios" or (platform is None and "apns" in out.platforms)
        ):
            return FcmError("THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service")
        if not settings.webpush_credentials and (
            platform == "web" or (platform is None and "webpush" in out.platforms)
        ):
            return FcmError("THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service")
        return None

    def _validated(self, project: str) -> Respond:
        """A ``validate_only`` send that passed: FCM names no real message."""
        self.stats.count(PROVIDER, "validated")
        return self._ok(f"projects/{project}/messages/fake_message_id")

    def _next_name(self, project: str, now: float) -> str:
        self._seq += 1
        return f"projects/{project}/messages/0:{int(now * 1_000_000)}%{self._seq:016x}"

    def lookup_fid(self, fid: str) -> tuple[TokenState, Device | None]:
        """A Firebase installation ID is the part of a registration token before ``:``."""
        found = self.registry.lookup_fid(fid)
        return found.state, found.device

    def _send_to_token(self, project: str, out: Outbound, validate_only: bool) -> Respond:
        token = out.value
        if out.target == "fid":
            state, dev_or_none = self.lookup_fid(token)
        else:
            found = self.registry.lookup(PROVIDER, token)
            state, dev_or_none = found.state, found.device
        if state is TokenState.VALID:
            dev = dev_or_none
            assert dev is not None
        elif state is TokenState.DEAD:
            self.registry.note_rejection(PROVIDER, token)
            return self.fail(FcmError("UNREGISTERED", "Requested entity was not found."))
        else:
            return self.fail(invalid(_INVALID_TOKEN, f"message.{out.target}"))
        if dev.app != project:
            return self.fail(FcmError("SENDER_ID_MISMATCH", "SenderId mismatch"))
        problem = self._third_party_problem(project, out, dev)
        if problem is not None:
            return self.fail(problem)
        if validate_only:
            return self._validated(project)
        now = self.clock.time()
        name = self._next_name(project, now)
        over = self.quotas.check(project, dev.id, out.collapse_key is not None, now)
        if over is not None:
            which, wait = over
            return self.fail(
                FcmError(
                    "QUOTA_EXCEEDED",
                    f"Quota exceeded ({which.replace('_', ' ')}); retry later.",
                    retry_after=wait,
                )
            )
        outcome = self.devices.push(
            dev, self._entry(name, out, project, now, None), out.ttl, out.collapse_key
        )
        self.stats.count(PROVIDER, outcome)
        return self._ok(name)

    def _send_to_topic(self, project: str, out: Outbound, validate_only: bool) -> Respond:
        problem = self._third_party_problem(project, out, None)
        if problem is not None:
            return self.fail(problem)
        if validate_only:
            return self._validated(project)
        now = self.clock.time()
        name = self._next_name(project, now)
        over = self.quotas.check(project, None, False, now)
        if over is not None:
            return self.fail(
                FcmError(
                    "QUOTA_EXCEEDED",
                    "Quota exceeded for topic messages; retry later.",
                    retry_after=over[1],
                )
            )
        if out.target == "topic":
            targets = self.topics.subscribers(out.value, project)
            origin = f"/topics/{out.value}"
        else:
            cond = parse_condition(out.value)
            targets = self.topics.matching(cond, project, self.registry.live_devices(PROVIDER))
            origin = out.value
        base = self._entry(name, out, project, now, origin)
        for dev in targets:
            self.devices.push(dev, dict(base), out.ttl, out.collapse_key)
        self.stats.count(PROVIDER, "topic")
        self.stats.count(PROVIDER, "fanout", len(targets))
        return self._ok(name)

    def _entry(
        self, name: str, out: Outbound, project: str, now: float, origin: str | None
    ) -> dict[str, Any]:
        message = out.message
        entry: dict[str, Any] = {
            "provider": PROVIDER,
            "message_id": name,
            "sent_at": now,
            "from": origin,
            "project_id": project,
            "priority": out.priority,
            "collapse_key": out.collapse_key,
            "message": message,
        }
        if "data" in message:
            entry["data"] = message["data"]
        if "notification" in message:
            entry["notification"] = message["notification"]
        data = message.get("data")
        corr = data.get("correlation_id") if data else None  # the usual place: no walk
        if not isinstance(corr, str):
            corr = find_correlation(message)
        if corr:
            entry["correlation_id"] = corr
        return entry

    def _ok(self, name: str) -> Respond:
        return Respond(200, _JSON, b'{"name":"' + name.encode() + b'"}')
