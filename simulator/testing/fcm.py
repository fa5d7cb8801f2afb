"""Testing helpers for the FCM simulator: assertions, access tokens, sends, firebase-admin.

``point_firebase_admin(app, endpoints)`` points an initialised firebase-admin app at a
running simulator (the SDK has no base-URL option for messaging; see the function).
The rest are small conveniences for tests that talk to the ``fcm`` listener with httpx.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import jwt

from simulator.testing.handle import SimulatorHandle

PROJECT = "pushsim-project"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


def service_account(sim: SimulatorHandle) -> dict[str, Any]:
    sa: dict[str, Any] = json.loads((sim.state_dir / "fcm" / "service-account.json").read_text())
    return sa


def assertion(sim: SimulatorHandle, key: str | None = None, **claims: Any) -> str:
    return signed_assertion(service_account(sim), key, **claims)


def signed_assertion(sa: dict[str, Any], key: str | None = None, **claims: Any) -> str:
    """The JWT-bearer grant's assertion for service account ``sa`` (``None`` drops a claim)."""
    now = int(time.time())
    body = {
        "iss": sa["client_email"],
        "scope": FCM_SCOPE,
        "aud": sa["token_uri"],
        "iat": now,
        "exp": now + 3600,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(
        body, key or sa["private_key"], algorithm="RS256", headers={"kid": sa["private_key_id"]}
    )


def client(sim: SimulatorHandle, http2: bool = True) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=sim.endpoints["ca_file"])
    return httpx.Client(http2=http2, verify=ctx, base_url=sim.endpoints["fcm"], timeout=10)


def access_token(sim: SimulatorHandle) -> str:
    with client(sim) as c:
        r = c.post(
            "/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion(sim),
            },
        )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def send(
    c: httpx.Client, token: str, message: dict[str, Any], project: str = PROJECT, **extra: Any
) -> httpx.Response:
    return c.post(
        f"/v1/projects/{project}/messages:send",
        headers={"authorization": f"Bearer {token}"},
        json={"message": message, **extra},
    )


def error_code(r: httpx.Response) -> str | None:
    for d in r.json()["error"].get("details", []):
        if d.get("@type") == "type.googleapis.com/google.firebase.fcm.v1.FcmError":
            code: str = d["errorCode"]
            return code
    return None


def point_firebase_admin(app: Any, endpoints: Mapping[str, str] | str | Path) -> None:
    """Point firebase-admin's messaging service for ``app`` at pushsim's ``fcm`` listener.

    ``endpoints`` is the simulator's endpoints (a mapping, or the path of its
    ``endpoints.json``). firebase-admin builds its FCM URLs from constants when the
    messaging service is first created, so this replaces them on that service: sends,
    the v1 topic API (``subscribe_to_topic``) and the legacy Instance ID API
    (``subscribe_to_topic_legacy``). The OAuth token endpoint needs nothing: it comes from
    the service-account file's ``token_uri``. Trusting the simulator's CA is done before
    the app's first messaging call, through ``REQUESTS_CA_BUNDLE`` (sync sends, token
    refresh) and ``SSL_CERT_FILE`` (``send_each_async``), both set to ``ca_file``.
    """
    from firebase_admin import messaging

    urls: Mapping[str, str] = (
        endpoints if isinstance(endpoints, Mapping) else json.loads(Path(endpoints).read_text())
    )
    fcm = urls["fcm"]
    service = messaging._get_messaging_service(app)
    project = service._project_id
    service._fcm_url = f"{fcm}/v1/projects/{project}/messages:send"
    service._fcm_topic_url = f"{fcm}/v1/projects/{project}/registrations"
    messaging._MessagingService.IID_URL = fcm
    quiet_google_auth(service._credential)


def quiet_google_auth(credential: Any) -> None:
    """Keep google-auth from calling Google after each token refresh.

    google-auth 2.4x looks up the service account's Regional Access Boundary at
    ``iamcredentials.googleapis.com`` in the background after refreshing a token; against
    the simulator there is no such host to ask (offline it fails and backs off, online it
    would leave the machine). This turns the lookup off for one credential.
    """
    if hasattr(credential, "_is_regional_access_boundary_lookup_required"):
        credential._is_regional_access_boundary_lookup_required = lambda: False
