"""The FCM Topic Subscription API, ``/v1/projects/{p}/registrations/{id}/topicSubscriptions``,
as a pure core (the ``fcm`` listener's router hands it those paths).

``{id}`` is a registration token or a Firebase installation ID (FID). The resource is
``{"name": "projects/{p}/registrations/{id}/topicSubscriptions/{topic}", "topic_name",
"create_time"}`` (RFC 3339, Z-normalised):

- ``POST .../topicSubscriptions?topic_name=T`` (or ``topic_name`` / ``name`` in the body):
  create; 409 ALREADY_EXISTS when it exists; QUOTA_EXCEEDED past 2,000 topics;
- ``GET .../topicSubscriptions/{T}``: get (404 NOT_FOUND when there is none);
- ``GET .../topicSubscriptions?pageSize=N&pageToken=P``: list (1,000 a page unless asked,
  at most 2,000), ``{"topic_subscriptions": [...], "next_page_token"?}``;
- ``PATCH .../topicSubscriptions/{T}[?allowMissing=true]``: the subscription, created when
  missing if ``allowMissing`` (else NOT_FOUND);
- ``DELETE .../topicSubscriptions/{T}[?allow_missing=true]``: unsubscribe (``{}``).

Errors are FCM's: PERMISSION_DENIED for another project's token or registration,
INVALID_ARGUMENT for a bad topic name or an id never issued, UNREGISTERED for a dead one,
SENDER_ID_MISMATCH for another project's device. A subscription made through the Instance
ID API is the same subscription (one topic index).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from simulator.providers.fcm.core import PROVIDER, FcmCore
from simulator.providers.fcm.errors import (
    FcmError,
    fcm_error_response,
    invalid,
    not_found,
    permission_denied,
    status_body,
)
from simulator.providers.fcm.oauth import AccessGrant
from simulator.providers.fcm.topics import MAX_TOPICS_PER_DEVICE, TOPIC_NAME
from simulator.state.devices import Device, TokenState
from simulator.state.tokens import FID_LENGTH
from simulator.wire import Request, Respond

_JSON = (("content-type", "application/json; charset=UTF-8"),)
DEFAULT_PAGE = 1000
MAX_PAGE = 2000
Query = dict[str, list[str]]


def _first(query: Query, *names: str) -> str | None:
    for name in names:
        if name in query:
            return query[name][0]
    return None


def rfc3339(t: float) -> str:
    whole = int(t)
    millis = round((t - whole) * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _ok(body: Any) -> Respond:
    return Respond(200, _JSON, json.dumps(body).encode())


class TopicSubscriptionApi:
    """The Topic Subscription API of one FCM core."""

    def __init__(self, core: FcmCore, auth: Callable[[Request], AccessGrant | Respond]) -> None:
        self.core = core
        self.auth = auth
        # (device number, generation, topic) -> when it was created (only subscriptions)
        self._created: dict[tuple[int, int, str], float] = {}

    def handle(self, req: Request, parts: list[str], query: Query) -> Respond:
        """``parts``: the path after ``/v1/projects/`` split on ``/`` (4 or 5 of them)."""
        project, registration = parts[0], unquote(parts[2])
        topic = unquote(parts[4]) if len(parts) == 5 else None
        method = self._method(req.method, topic is not None)
        if method is None:
            return not_found()
        grant = self.auth(req)
        if isinstance(grant, Respond):
            return grant
        if grant.project_id != project:
            return permission_denied(project)
        if method == "create":
            topic = _first(query, "topic_name", "topicName") or _body_topic(req.body)
        if method != "list" and (topic is None or not TOPIC_NAME.match(topic)):
            return fcm_error_response(FcmError("INVALID_ARGUMENT", "Invalid topic name."))
        dev = self._device(registration, project)
        if isinstance(dev, Respond):
            return dev
        base = f"projects/{project}/registrations/{registration}/topicSubscriptions"
        if method == "list":
            return self._list(dev, base, query)
        assert topic is not None
        return _OPERATIONS[method](self, dev, base, topic, query)

    @staticmethod
    def _method(verb: str, named: bool) -> str | None:
        return (_NAMED if named else _COLLECTION).get(verb)

    def _device(self, registration: str, project: str) -> Device | Respond:
        """The live device ``registration`` (a token or an FID) names, or FCM's answer."""
        core = self.core
        if ":" not in registration and len(registration) == FID_LENGTH:
            state, dev = core.lookup_fid(registration)
        else:
            found = core.registry.lookup(PROVIDER, registration)
            state, dev = found.state, found.device
        if state is TokenState.DEAD:
            core.registry.note_rejection(PROVIDER, registration)
            return fcm_error_response(FcmError("UNREGISTERED", "Requested entity was not found."))
        if dev is None or state is not TokenState.VALID:
            message = "The registration token is not a valid FCM registration token"
            return fcm_error_response(invalid(message, "parent"))
        if dev.app != project:
            return fcm_error_response(FcmError("SENDER_ID_MISMATCH", "SenderId mismatch"))
        return dev

    def _resource(self, dev: Device, base: str, topic: str) -> dict[str, Any]:
        key = (dev.number, dev.generation, topic)
        created = self._created.setdefault(key, self.core.clock.time())
        return {"name": f"{base}/{topic}", "topic_name": topic, "create_time": rfc3339(created)}

    def _subscribe(self, dev: Device, topic: str) -> Respond | None:
        if len(dev.topics) >= MAX_TOPICS_PER_DEVICE:
            limit = f"An app instance may subscribe to at most {MAX_TOPICS_PER_DEVICE} topics."
            return fcm_error_response(FcmError("QUOTA_EXCEEDED", limit))
        self.core.topics.subscribe(dev, topic)
        self._created[(dev.number, dev.generation, topic)] = self.core.clock.time()
        self.core.stats.count(PROVIDER, "topic_add")
        return None

    # -- the operations ------------------------------------------------------------------

    def _create(self, dev: Device, base: str, topic: str, query: Query) -> Respond:
        if topic in dev.topics:
            body = status_body(409, "Topic subscription already exists.", "ALREADY_EXISTS")
            return Respond(409, _JSON, body)
        return self._subscribe(dev, topic) or _ok(self._resource(dev, base, topic))

    def _get(self, dev: Device, base: str, topic: str, query: Query) -> Respond:
        if topic not in dev.topics:
            return not_found("Topic subscription not found.")
        return _ok(self._resource(dev, base, topic))

    def _patch(self, dev: Device, base: str, topic: str, query: Query) -> Respond:
        if topic not in dev.topics:
            if _first(query, "allowMissing", "allow_missing") != "true":
                return not_found("Topic subscription not found.")
            failed = self._subscribe(dev, topic)
            if failed is not None:
                return failed
        return _ok(self._resource(dev, base, topic))

    def _delete(self, dev: Device, base: str, topic: str, query: Query) -> Respond:
        if topic not in dev.topics and _first(query, "allow_missing", "allowMissing") != "true":
            return not_found("Topic subscription not found.")
        self.core.topics.unsubscribe(dev, topic)
        self._created.pop((dev.number, dev.generation, topic), None)
        self.core.stats.count(PROVIDER, "topic_remove")
        return Respond(200, _JSON, b"{}")

    def _list(self, dev: Device, base: str, query: Query) -> Respond:
        size_text = _first(query, "pageSize", "page_size") or str(DEFAULT_PAGE)
        token = _first(query, "pageToken", "page_token") or "0"
        if not (size_text + token).isascii() or not size_text.isdigit() or not token.isdigit():
            return fcm_error_response(invalid("Invalid page size or page token.", "page_token"))
        size = min(int(size_text) or DEFAULT_PAGE, MAX_PAGE)
        start = int(token)
        topics = sorted(dev.topics)
        page = topics[start : start + size]
        body: dict[str, Any] = {"topic_subscriptions": [self._resource(dev, base, t) for t in page]}
        if start + size < len(topics):
            body["next_page_token"] = str(start + size)
        return _ok(body)


def _body_topic(body: bytes) -> str | None:
    """A create request's topic given in its body (``topic_name``, or the ``name``'s end)."""
    try:
        doc = json.loads(body) if body else {}
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    name = doc.get("topic_name") or doc.get("topicName")
    if isinstance(name, str):
        return name
    full = doc.get("name")
    return full.rsplit("/", 1)[-1] if isinstance(full, str) and full else None


_COLLECTION = {"POST": "create", "GET": "list"}
_NAMED = {"GET": "get", "PATCH": "patch", "DELETE": "delete"}
_OPERATIONS: dict[str, Callable[[TopicSubscriptionApi, Device, str, str, Query], Respond]] = {
    "create": TopicSubscriptionApi._create,
    "get": TopicSubscriptionApi._get,
    "patch": TopicSubscriptionApi._patch,
    "delete": TopicSubscriptionApi._delete,
}
