"""Where production is lenient, pushsim is too: a sender must not fail here for what the real
services accept. Real sockets; firebase-admin where it is the client that meets the rule."""

from __future__ import annotations

import itertools
import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import firebase_admin
import jwt
import pytest
from firebase_admin import credentials, messaging
from h2clients import H2Client

from simulator.providers.apns.auth import issued_at
from simulator.providers.fcm.oauth import GOOGLE_OLD_TOKEN_URI
from simulator.testing import fcm
from simulator.testing.fcm import point_firebase_admin
from simulator.testing.handle import SimulatorHandle, apns_credentials

_names = itertools.count()


def _apns_send(sim: SimulatorHandle, iat: object) -> tuple[int, dict[str, Any]]:
    meta, key = apns_credentials(sim.state_dir)
    token = jwt.encode(
        {"iss": meta["team_id"], "iat": iat},
        key,
        algorithm="ES256",
        headers={"kid": meta["key_id"]},
    )
    dev = sim.mint("apns")[0]
    c = H2Client(sim.endpoints["apns"], sim.endpoints["ca_file"])
    try:
        status, _, raw = c.request(
            f"/3/device/{dev['token']}",
            [("authorization", f"bearer {token}"), ("apns-topic", meta["bundle_id"])],
        )
    finally:
        c.close()
    return status, (json.loads(raw) if raw else {})


def test_apns_accepts_a_provider_token_whose_iat_is_a_numeric_string(
    sim: SimulatorHandle,
) -> None:
    assert _apns_send(sim, str(int(time.time()))) == (200, {})


@pytest.mark.parametrize("iat", ["soon", "", "1764614400.5", "-5", True])
def test_apns_refuses_an_iat_that_is_not_a_number(sim: SimulatorHandle, iat: object) -> None:
    status, body = _apns_send(sim, iat)
    assert (status, body.get("reason")) == (403, "InvalidProviderToken")


def test_iat_reading_is_numbers_or_decimal_digits() -> None:
    assert issued_at(1764614400) == issued_at("1764614400") == 1764614400.0
    assert issued_at(1.5) == 1.5
    assert [issued_at(v) for v in ("١٢", " 12", None, False, [1])] == [None] * 5


@pytest.fixture
def app(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.endpoints["ca_file"])
    monkeypatch.setenv("SSL_CERT_FILE", sim.endpoints["ca_file"])
    cred = credentials.Certificate(str(sim.state_dir / "fcm" / "service-account.json"))
    fb = firebase_admin.initialize_app(cred, name=f"lenient-{next(_names)}")
    point_firebase_admin(fb, sim.state_dir / "endpoints.json")
    yield fb
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        firebase_admin.delete_app(fb)


def test_fcm_validate_only_names_the_fake_message(sim: SimulatorHandle, app: Any) -> None:
    dev = sim.mint("fcm")[0]
    name = messaging.send(messaging.Message(token=dev["token"]), dry_run=True, app=app)
    assert name == f"projects/{fcm.PROJECT}/messages/fake_message_id"
    topic = messaging.send(messaging.Message(topic="news"), dry_run=True, app=app)
    assert topic == f"projects/{fcm.PROJECT}/messages/fake_message_id"
    real = messaging.send(messaging.Message(token=dev["token"]), app=app)
    assert real.startswith(f"projects/{fcm.PROJECT}/messages/") and "fake" not in real


def test_oauth_accepts_the_older_token_url_as_audience(sim: SimulatorHandle) -> None:
    assert GOOGLE_OLD_TOKEN_URI == "https://www.googleapis.com/oauth2/v4/token"
    with fcm.client(sim) as c:
        r = c.post(
            "/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": fcm.assertion(sim, aud=GOOGLE_OLD_TOKEN_URI),
            },
        )
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        dev = sim.mint("fcm")[0]
        assert fcm.send(c, token, {"token": dev["token"]}).status_code == 200
        wrong = c.post(
            "/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": fcm.assertion(sim, aud="https://example.com/token"),
            },
        )
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
