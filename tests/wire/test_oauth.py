"""The OAuth2 token endpoint over a real socket: google-auth, and every refusal Google makes."""

from __future__ import annotations

import time

import google.auth.transport.requests
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account as google_sa

from simulator.testing.fcm import FCM_SCOPE, assertion, client, quiet_google_auth, send
from simulator.testing.handle import SimulatorHandle

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def token_request(sim: SimulatorHandle, **form: str) -> tuple[int, dict[str, str]]:
    with client(sim, http2=False) as c:
        r = c.post("/token", data=form)
    return r.status_code, r.json()


def test_google_auth_gets_an_access_token_through_token_uri(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.endpoints["ca_file"])
    creds = google_sa.Credentials.from_service_account_file(
        str(sim.state_dir / "fcm" / "service-account.json"), scopes=[FCM_SCOPE]
    )
    quiet_google_auth(creds)
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.token and creds.token.startswith("ya29.")
    assert creds.expiry is not None
    with client(sim) as c:
        dev = sim.mint("fcm")[0]
        assert send(c, creds.token, {"token": dev["token"]}).status_code == 200


def test_success_body(sim: SimulatorHandle) -> None:
    status, body = token_request(sim, grant_type=GRANT, assertion=assertion(sim))
    assert status == 200
    assert body["expires_in"] == 3599 and body["token_type"] == "Bearer" and body["access_token"]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": GRANT}, "invalid_request"),
        ({"grant_type": GRANT, "assertion": "not.a.jwt"}, "invalid_grant"),
    ],
)
def test_malformed_requests(sim: SimulatorHandle, form: dict[str, str], error: str) -> None:
    status, body = token_request(sim, **form)
    assert status == 400 and body["error"] == error and body["error_description"]


def test_assertion_checks(sim: SimulatorHandle) -> None:
    now = int(time.time())
    other_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    cases = {
        "signed by another key": (assertion(sim, key=other_key), "invalid_grant", "Signature"),
        "unknown account": (
            assertion(sim, iss="someone@else.iam.gserviceaccount.com"),
            "invalid_grant",
            "account",
        ),
        "lives over an hour": (assertion(sim, exp=now + 3700), "invalid_grant", "short-lived"),
        "expired": (assertion(sim, iat=now - 7200, exp=now - 3600), "invalid_grant", "short-lived"),
        "issued in the future": (
            assertion(sim, iat=now + 3600, exp=now + 4000),
            "invalid_grant",
            "short-lived",
        ),
        "no exp": (assertion(sim, exp=None), "invalid_grant", "iat and exp"),
        "wrong audience": (
            assertion(sim, aud="https://example.com/token"),
            "invalid_grant",
            "audience",
        ),
        "no scope": (assertion(sim, scope=None), "invalid_scope", "scope"),
        "odd scope": (assertion(sim, scope="made-up"), "invalid_scope", "scope"),
    }
    for name, (jwt_text, error, words) in cases.items():
        status, body = token_request(sim, grant_type=GRANT, assertion=jwt_text)
        assert (status, body["error"]) == (400, error), name
        assert words in body["error_description"], name


def test_googles_audience_is_accepted_too(sim: SimulatorHandle) -> None:
    status, _ = token_request(
        sim, grant_type=GRANT, assertion=assertion(sim, aud="https://oauth2.googleapis.com/token")
    )
    assert status == 200


def test_get_is_refused(sim: SimulatorHandle) -> None:
    with client(sim) as c:
        r = c.get("/token")
    assert r.status_code == 405 and r.json()["error"] == "invalid_request"


def test_lifetime_is_configurable_and_expired_tokens_get_401(sim: SimulatorHandle) -> None:
    sim.control("POST", "/_sim/fcm/config", {"oauth": {"token_lifetime": 120}})
    status, body = token_request(sim, grant_type=GRANT, assertion=assertion(sim))
    assert status == 200 and body["expires_in"] == 119
    dev = sim.mint("fcm")[0]
    with client(sim) as c:
        assert send(c, body["access_token"], {"token": dev["token"]}).status_code == 200
        assert sim.control("POST", "/_sim/fcm/oauth/expire")["expired"] >= 1
        r = send(c, body["access_token"], {"token": dev["token"]})
        assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
        assert r.json()["error"]["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"
        assert "invalid_token" in r.headers["www-authenticate"]


def test_scope_without_messaging_cannot_send(sim: SimulatorHandle) -> None:
    jwt_text = assertion(sim, scope="https://www.googleapis.com/auth/userinfo.email")
    status, body = token_request(sim, grant_type=GRANT, assertion=jwt_text)
    assert status == 200
    dev = sim.mint("fcm")[0]
    with client(sim) as c:
        r = send(c, body["access_token"], {"token": dev["token"]})
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
