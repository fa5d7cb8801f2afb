"""firebase-admin, unchanged, against a running simulator: sends, topics and every exception.

The SDK needs the service-account file (its ``token_uri`` already points at the
simulator), the CA (``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE``) and the FCM base URL
(:func:`simulator.testing.fcm.point_firebase_admin`).
"""

from __future__ import annotations

import asyncio
import itertools
import warnings
from collections.abc import Iterator
from typing import Any

import firebase_admin
import pytest
from firebase_admin import credentials, exceptions, messaging

from simulator.testing.fcm import point_firebase_admin
from simulator.testing.handle import SimulatorHandle

_names = itertools.count()


@pytest.fixture
def app(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.endpoints["ca_file"])
    monkeypatch.setenv("SSL_CERT_FILE", sim.endpoints["ca_file"])
    cred = credentials.Certificate(str(sim.state_dir / "fcm" / "service-account.json"))
    fb = firebase_admin.initialize_app(cred, name=f"pushsim-{next(_names)}")
    point_firebase_admin(fb, sim.state_dir / "endpoints.json")
    yield fb
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            firebase_admin.delete_app(fb)
        except RuntimeError:  # the async client's loop may already be gone
            pass


def inbox(sim: SimulatorHandle, dev: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")[
        "messages"
    ]
    return messages


def test_send_and_send_each(sim: SimulatorHandle, app: Any) -> None:
    a, b, dead = sim.mint("fcm", 3)
    sim.control("DELETE", f"/_sim/devices/{dead['id']}")
    msg = messaging.Message(
        token=a["token"],
        data={"correlation_id": "fb-1"},
        notification=messaging.Notification(title="Hi", body="there"),
        android=messaging.AndroidConfig(ttl=3.5, priority="high", collapse_key="k"),
    )
    name = messaging.send(msg, app=app)
    assert name.startswith("projects/pushsim-project/messages/")
    seen = inbox(sim, a)[0]
    assert seen["message_id"] == name and seen["correlation_id"] == "fb-1"
    assert (
        seen["message"]["android"]["ttl"] == "3.500000000s"
        and seen["notification"]["title"] == "Hi"
    )

    batch = messaging.send_each(
        [
            messaging.Message(token=t, data={"n": str(i)})
            for i, t in enumerate((a["token"], b["token"], dead["token"]))
        ],
        app=app,
    )
    assert (batch.success_count, batch.failure_count) == (2, 1)
    assert isinstance(batch.responses[2].exception, messaging.UnregisteredError)
    assert inbox(sim, b)[0]["data"] == {"n": "1"}

    assert messaging.send(messaging.Message(token=b["token"]), dry_run=True, app=app)
    assert len(inbox(sim, b)) == 1  # dry run delivers nothing

    # Message.fid: the Firebase installation ID, the head of a registration token
    messaging.send(
        messaging.Message(fid=b["token"].partition(":")[0], data={"via": "fid"}), app=app
    )
    assert inbox(sim, b)[-1]["data"] == {"via": "fid"}


def test_send_each_async_over_h2(sim: SimulatorHandle, app: Any) -> None:
    devs = sim.mint("fcm", 5)
    messages = [messaging.Message(token=d["token"], data={"correlation_id": d["id"]}) for d in devs]
    batch = asyncio.run(messaging.send_each_async(messages, dry_run=False, app=app))
    assert batch.success_count == 5
    assert all(inbox(sim, d)[0]["correlation_id"] == d["id"] for d in devs)


def test_topics_subscribe_send_unsubscribe_and_conditions(sim: SimulatorHandle, app: Any) -> None:
    a, b, c = sim.mint("fcm", 3)
    resp = messaging.subscribe_to_topic([a["token"], b["token"], "not-a-token"], "news", app=app)
    assert (resp.success_count, resp.failure_count) == (2, 1)
    assert resp.errors[0].index == 2 and resp.errors[0].reason == "INVALID_ARGUMENT"
    with pytest.warns(DeprecationWarning):
        legacy = messaging.subscribe_to_topic_legacy(
            [b["token"], c["token"]], "/topics/sport", app=app
        )
    assert legacy.success_count == 2

    messaging.send(messaging.Message(topic="news", data={"k": "v"}), app=app)
    assert (
        [m["from"] for m in inbox(sim, a)] == ["/topics/news"]
        and len(inbox(sim, b)) == 1
        and not inbox(sim, c)
    )

    messaging.send(messaging.Message(condition="'news' in topics && 'sport' in topics"), app=app)
    assert len(inbox(sim, b)) == 2 and len(inbox(sim, a)) == 1 and not inbox(sim, c)

    assert messaging.unsubscribe_from_topic([a["token"]], "news", app=app).success_count == 1
    messaging.send(messaging.Message(topic="news"), app=app)
    assert len(inbox(sim, a)) == 1 and len(inbox(sim, b)) == 3


def test_expired_access_token_is_refreshed_by_the_sdk(sim: SimulatorHandle, app: Any) -> None:
    dev = sim.mint("fcm")[0]
    messaging.send(messaging.Message(token=dev["token"]), app=app)
    issued = sim.control("GET", "/_sim/fcm")["oauth"]["tokens_issued"]
    assert sim.control("POST", "/_sim/fcm/oauth/expire")["expired"] >= 1
    messaging.send(messaging.Message(token=dev["token"]), app=app)  # 401, refresh, retry
    assert sim.control("GET", "/_sim/fcm")["oauth"]["tokens_issued"] == issued + 1
    assert len(inbox(sim, dev)) == 2


def test_each_exception_type(sim: SimulatorHandle, app: Any) -> None:
    ok, dead = sim.mint("fcm", 2)
    other = sim.mint("fcm", app="other-project")[0]
    sim.control("DELETE", f"/_sim/devices/{dead['id']}")

    with pytest.raises(messaging.UnregisteredError):
        messaging.send(messaging.Message(token=dead["token"]), app=app)
    with pytest.raises(messaging.SenderIdMismatchError):
        messaging.send(messaging.Message(token=other["token"]), app=app)
    with pytest.raises(exceptions.InvalidArgumentError):
        messaging.send(messaging.Message(token="never-issued"), app=app)
    with pytest.raises(exceptions.InvalidArgumentError):
        messaging.send(
            messaging.Message(token=ok["token"], data={"google.sent_time": "1"}), app=app
        )

    sim.control(
        "POST", "/_sim/fcm/config", {"projects": {"pushsim-project": {"apns_credentials": False}}}
    )
    apns = messaging.APNSConfig(payload=messaging.APNSPayload(aps=messaging.Aps(alert="hi")))
    with pytest.raises(messaging.ThirdPartyAuthError):
        messaging.send(messaging.Message(token=ok["token"], apns=apns), app=app)
    messaging.send(messaging.Message(token=ok["token"]), app=app)  # no APNs delivery: fine

    # The sync client retries a 429 that carries Retry-After (urllib3), so the quota is
    # met through send_each_async, whose client does not.
    sim.control("POST", "/_sim/fcm/config", {"quota": {"device_per_minute": 1}})
    batch = asyncio.run(
        messaging.send_each_async(
            [messaging.Message(token=ok["token"])] * 2, dry_run=False, app=app
        )
    )
    assert batch.success_count == 1
    quota = next(r.exception for r in batch.responses if r.exception is not None)
    assert isinstance(quota, messaging.QuotaExceededError)
    assert (
        quota.http_response is not None
        and 55 <= int(quota.http_response.headers["retry-after"]) <= 60
    )


def test_unavailable_from_the_fault_plan(sim: SimulatorHandle, app: Any) -> None:
    dev = sim.mint("fcm")[0]
    sim.control(
        "POST",
        "/_sim/faults",
        {"kind": "outage", "provider": "fcm", "duration": "60s", "retry_after": 1},
    )
    # firebase-admin retries a 503 four times, honouring Retry-After: 1 s each.
    with pytest.raises(exceptions.UnavailableError):
        messaging.send(messaging.Message(token=dev["token"]), app=app)
    assert not inbox(sim, dev)
