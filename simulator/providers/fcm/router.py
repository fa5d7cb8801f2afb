"""The ``fcm`` listener: routes requests to the OAuth endpoint, FCM v1 and topic management.

One port (HTTP/2 and HTTP/1.1) serves what three Google hosts serve in production:

- ``POST /token``: the OAuth2 token endpoint (``oauth2.googleapis.com``);
- ``POST /v1/projects/{project}/messages:send`` (``fcm.googleapis.com``);
- ``/v1/projects/{project}/registrations/{token or FID}/topicSubscriptions[/{T}]``: the
  Topic Subscription API (create, get, list, patch, delete: firebase-admin 7.7 subscribes
  through it), in :mod:`simulator.providers.fcm.subscriptions`;
- ``POST /iid/v1:batchAdd`` / ``:batchRemove`` and ``GET /iid/info/{token}``: the Instance ID
  API (``iid.googleapis.com``), authorised with an OAuth access token.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, unquote

from simulator.providers.fcm.core import PROVIDER, FcmCore
from simulator.providers.fcm.errors import not_found, permission_denied
from simulator.providers.fcm.oauth import AccessGrant, TokenEndpoint
from simulator.providers.fcm.subscriptions import TopicSubscriptionApi
from simulator.providers.fcm.topics import TOPIC_NAME
from simulator.state.devices import Device, TokenState
from simulator.wire import Action, Request, Respond

_JSON = (("content-type", "application/json; charset=UTF-8"),)
SEND_SUFFIX = "/messages:send"
PROJECTS_PREFIX = "/v1/projects/"
MAX_IID_TOKENS = 1000


def _iid_error(status: int, error: str) -> Respond:
    return Respond(status, _JSON, json.dumps({"error": error}).encode())


class FcmRouter:
    """The ``fcm`` listener's handler."""

    def __init__(self, core: FcmCore, oauth: TokenEndpoint) -> None:
        self.core = core
        self.oauth = oauth
        self.subscriptions = TopicSubscriptionApi(core, self._auth)

    def handle(self, req: Request) -> Action:
        path = req.path
        if path.startswith(PROJECTS_PREFIX) and path.endswith(SEND_SUFFIX):
            project = path[len(PROJECTS_PREFIX) : -len(SEND_SUFFIX)]
            if req.method != "POST":
                return not_found(f"Method {req.method} is not supported for messages:send.")
            if not project or "/" in project:
                return not_found()
            return self.core.send(req, project)
        path, _, query = path.partition("?")
        if path == "/token":
            return self.oauth.handle(req)
        if path in ("/iid/v1:batchAdd", "/iid/v1:batchRemove"):
            return self.iid_batch(req, add=path.endswith("batchAdd"))
        if path.startswith("/iid/info/"):
            return self.iid_info(req, unquote(path[len("/iid/info/") :]))
        if path.startswith(PROJECTS_PREFIX):
            parts = path[len(PROJECTS_PREFIX) :].split("/")
            if (
                len(parts) in (4, 5)
                and parts[1] == "registrations"
                and parts[3] == "topicSubscriptions"
            ):
                return self.subscriptions.handle(req, parts, parse_qs(query))
        return not_found()

    # -- topic management ---------------------------------------------------------

    def _auth(self, req: Request) -> AccessGrant | Respond:
        res = self.core.authenticate(req)
        if isinstance(res, AccessGrant) and not res.may_send:
            return permission_denied(res.project_id)
        return res

    def _lookup(self, token: str) -> tuple[Device | None, TokenState]:
        found = self.core.registry.lookup(PROVIDER, token)
        return found.device, found.state

    def iid_batch(self, req: Request, add: bool) -> Respond:
        if req.method != "POST":
            return _iid_error(405, "MethodNotAllowed")
        auth = req.header("authorization") or ""
        if auth.lower().startswith("key="):
            return _iid_error(
                401, "Unauthorized: server keys are no longer accepted; use an OAuth2 access token"
            )
        grant = self._auth(req)
        if isinstance(grant, Respond):
            return grant
        try:
            body: Any = json.loads(req.body)
        except (ValueError, RecursionError):
            return _iid_error(400, "InvalidJson")
        if not isinstance(body, dict):
            return _iid_error(400, "InvalidJson")
        to = body.get("to")
        tokens = body.get("registration_tokens")
        if not isinstance(to, str) or not to.startswith("/topics/") or not TOPIC_NAME.match(to[8:]):
            return _iid_error(400, "InvalidTopicName" if isinstance(to, str) else "MissingTo")
        if (
            not isinstance(tokens, list)
            or not tokens
            or not all(isinstance(t, str) for t in tokens)
        ):
            return _iid_error(400, "MissingRegistrationTokens")
        if len(tokens) > MAX_IID_TOKENS:
            return _iid_error(400, "TooManyRegistrationTokens")
        topic = to[8:]
        results: list[dict[str, str]] = []
        for token in tokens:
            dev, state = self._lookup(token)
            if state is TokenState.DEAD:
                self.core.registry.note_rejection(PROVIDER, token)
                results.append({"error": "NOT_FOUND"})
            elif dev is None or state is not TokenState.VALID or dev.app != grant.project_id:
                results.append({"error": "INVALID_ARGUMENT"})
            elif add:
                err = self.core.topics.subscribe(dev, topic)
                results.append({"error": err} if err else {})
            else:
                self.core.topics.unsubscribe(dev, topic)
                results.append({})
        self.core.stats.count(PROVIDER, "topic_add" if add else "topic_remove", len(tokens))
        return Respond(200, _JSON, json.dumps({"results": results}).encode())

    def iid_info(self, req: Request, token: str) -> Respond:
        grant = self._auth(req)
        if isinstance(grant, Respond):
            return grant
        dev, state = self._lookup(token)
        if dev is None or state is not TokenState.VALID:
            return _iid_error(
                404 if state is TokenState.DEAD else 400,
                "No information found about this instance id.",
            )
        info: dict[str, Any] = {
            "application": dev.app,
            "authorizedEntity": dev.app,
            "platform": dev.meta.get("platform", "ANDROID").upper(),
        }
        if dev.topics:
            info["rel"] = {"topics": {t: {"addDate": "2024-01-01"} for t in sorted(dev.topics)}}
        return Respond(200, _JSON, json.dumps(info).encode())
