"""The APNs provider API through real sockets: every status and reason of DESIGN.md's table."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from h2clients import PAYLOAD, H2Client, make_token

from pushsim.clock import FakeClock
from simulator.state.credentials import issue_leaf, load_ca
from simulator.testing.handle import SimulatorHandle, running_simulator

TOPIC = "com.example.pushsim"


class Apns:
    """A test's view of one simulator: a client per environment and a provider token."""

    def __init__(self, sim: SimulatorHandle, clock_now: float | None = None) -> None:
        self.sim = sim
        self.token = make_token(sim.state_dir, clock_now)
        self.clients: list[H2Client] = []

    def client(self, env: str = "apns", cert_file: str | None = None) -> H2Client:
        c = H2Client(self.sim.endpoints[env], self.sim.endpoints["ca_file"], cert_file)
        self.clients.append(c)
        return c

    def headers(
        self, token: str | None = None, topic: str | None = TOPIC, **extra: str
    ) -> list[tuple[str, str]]:
        out = [("authorization", f"bearer {token or self.token}")]
        if topic is not None:
            out.append(("apns-topic", topic))
        out += [(k.replace("_", "-"), v) for k, v in extra.items()]
        return out

    def send(
        self, device: str, client: H2Client | None = None, body: bytes = PAYLOAD, **kw: Any
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        c = client or (self.clients[0] if self.clients else self.client())
        status, hdrs, raw = c.request(f"/3/device/{device}", self.headers(**kw), body)
        return status, hdrs, (json.loads(raw) if raw else {})


@pytest.fixture
def apns(sim: SimulatorHandle) -> Iterator[Apns]:
    a = Apns(sim)
    yield a
    for c in a.clients:
        c.close()


def reason_of(result: tuple[int, dict[str, str], dict[str, Any]]) -> tuple[int, str]:
    return result[0], result[2].get("reason", "")


# -- success path --------------------------------------------------------------------------


def test_success_echoes_apns_id_and_delivers(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]
    apns_id = "123E4567-E89B-12D3-A456-426614174000"
    status, hdrs, body = apns.send(dev["token"], apns_id=apns_id, apns_push_type="alert")
    assert status == 200 and body == {} and hdrs["apns-id"] == apns_id.lower()
    assert "apns-unique-id" not in hdrs
    status, hdrs, _ = apns.send(dev["token"])
    assert status == 200 and len(hdrs["apns-id"]) == 36
    inbox = apns.sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"]
    assert inbox[0]["message_id"] == apns_id.lower()
    assert (
        inbox[0]["payload"] == {"aps": {"alert": "hi"}}
        and inbox[0]["delivered_at"] >= inbox[0]["at"]
    )


def test_sandbox_adds_unique_id_and_tokens_do_not_cross(apns: Apns) -> None:
    prod = apns.sim.mint("apns")[0]
    sandbox = apns.sim.mint("apns", environment="sandbox")[0]
    sb = apns.client("apns_sandbox")
    status, hdrs, _ = apns.send(sandbox["token"], client=sb)
    assert status == 200 and len(hdrs["apns-unique-id"]) == 36
    assert reason_of(apns.send(prod["token"], client=sb)) == (400, "BadDeviceToken")
    assert reason_of(apns.send(sandbox["token"], client=apns.client())) == (400, "BadDeviceToken")


# -- header rules ----------------------------------------------------------------------------


def test_header_reasons_through_the_socket(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]["token"]
    assert reason_of(apns.send(dev, apns_id="xyz")) == (400, "BadMessageId")
    assert reason_of(apns.send(dev, apns_push_type="banner")) == (400, "InvalidPushType")
    assert reason_of(apns.send(dev, apns_priority="3")) == (400, "BadPriority")
    assert reason_of(apns.send(dev, apns_expiration="tomorrow")) == (400, "BadExpirationDate")
    assert reason_of(apns.send(dev, apns_collapse_id="c" * 65)) == (400, "BadCollapseId")
    assert reason_of(apns.send(dev, topic=None)) == (400, "MissingTopic")
    assert reason_of(apns.send(dev, topic="com.example.pushsim.voip")) == (400, "BadTopic")
    assert reason_of(apns.send(dev, topic="com.other.app")) == (400, "DeviceTokenNotForTopic")
    c = apns.clients[0]
    status, _, raw = c.request(
        f"/3/device/{dev}", [*apns.headers(), ("apns-priority", "10"), ("apns-priority", "5")]
    )
    assert (status, json.loads(raw)["reason"]) == (400, "DuplicateHeaders")


def test_payload_rules(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]["token"]
    assert reason_of(apns.send(dev, body=b"")) == (400, "PayloadEmpty")
    assert reason_of(apns.send(dev, body=b'{"acme":1}')) == (400, "PayloadEmpty")
    assert reason_of(apns.send(dev, body=b"{not json")) == (400, "BadPayload")
    big = b'{"aps":{"alert":"' + b"x" * 4100 + b'"}}'
    assert reason_of(apns.send(dev, body=big)) == (413, "PayloadTooLarge")
    # voip allows 5120 bytes
    voip = apns.sim.mint("apns")[0]["token"]
    ok = b'{"aps":{},"x":"' + b"x" * 5000 + b'"}'
    assert apns.send(voip, body=ok, topic=TOPIC + ".voip", apns_push_type="voip")[0] == 200
    too_big = b'{"aps":{},"x":"' + b"x" * 5200 + b'"}'
    assert reason_of(
        apns.send(voip, body=too_big, topic=TOPIC + ".voip", apns_push_type="voip")
    ) == (413, "PayloadTooLarge")


def test_path_method_and_device_tokens(apns: Apns) -> None:
    c = apns.client()
    status, _, raw = c.request("/3/devices/abc", apns.headers())
    assert (status, json.loads(raw)["reason"]) == (404, "BadPath")
    status, _, raw = c.request("/3/device/" + "a" * 64, apns.headers(), b"", method="GET")
    assert (status, json.loads(raw)["reason"]) == (405, "MethodNotAllowed")
    assert reason_of(apns.send("")) == (400, "MissingDeviceToken")
    assert reason_of(apns.send("zz" * 32)) == (400, "BadDeviceToken")
    assert reason_of(apns.send("ab" * 32)) == (400, "BadDeviceToken")  # never issued
    dev = apns.sim.mint("apns")[0]
    apns.sim.control("DELETE", f"/_sim/devices/{dev['id']}")
    status, _, body = apns.send(dev["token"])
    assert (
        status == 410 and body["reason"] == "Unregistered" and body["timestamp"] > 1_600_000_000_000
    )
    other = apns.sim.mint("apns")[0]
    apns.sim.control("POST", f"/_sim/apns/devices/{other['id']}/expire")
    assert reason_of(apns.send(other["token"])) == (410, "ExpiredToken")


# -- provider tokens ---------------------------------------------------------------------------


def test_provider_token_reasons(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]["token"]
    c = apns.client()
    status, _, raw = c.request(f"/3/device/{dev}", [("apns-topic", TOPIC)])
    assert (status, json.loads(raw)["reason"]) == (403, "MissingProviderToken")
    assert reason_of(apns.send(dev, token="not.a.jwt", client=apns.client())) == (
        403,
        "InvalidProviderToken",
    )
    sd = apns.sim.state_dir
    assert reason_of(
        apns.send(dev, token=make_token(sd, kid="ZZZZZZZZZZ"), client=apns.client())
    ) == (403, "InvalidProviderToken")
    old = make_token(sd, iat=time.time() - 3700)
    assert reason_of(apns.send(dev, token=old, client=apns.client())) == (
        403,
        "ExpiredProviderToken",
    )
    # a second team and key: using its team id with the first key is UnrelatedKeyIdInToken
    other = apns.sim.control("POST", "/_sim/apns/keys", {"bundle_ids": ["com.other.app"]})
    unrelated = make_token(sd, team=other["team_id"])
    assert reason_of(apns.send(dev, token=unrelated, client=apns.client())) == (
        403,
        "UnrelatedKeyIdInToken",
    )
    # the other team's key works for its own bundle and is TopicDisallowed for ours
    their = make_token(sd, kid=other["key_id"], team=other["team_id"], key_pem=other["p8"])
    assert reason_of(apns.send(dev, token=their, client=apns.client())) == (400, "TopicDisallowed")
    theirs = apns.sim.mint("apns", bundle_id="com.other.app")[0]["token"]
    assert apns.send(theirs, token=their, topic="com.other.app", client=apns.client())[0] == 200
    # a sandbox-only key on production
    sb = apns.sim.control("POST", "/_sim/apns/keys", {"environment": "sandbox"})
    sbt = make_token(sd, kid=sb["key_id"], team=sb["team_id"], key_pem=sb["p8"])
    assert reason_of(apns.send(dev, token=sbt, client=apns.client())) == (
        403,
        "BadEnvironmentKeyIdInToken",
    )
    # a revoked key
    apns.sim.control("DELETE", f"/_sim/apns/keys/{other['key_id']}")
    assert reason_of(
        apns.send(theirs, token=their, topic="com.other.app", client=apns.client())
    ) == (403, "Forbidden")


def test_token_updates_and_stream_limit(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]["token"]
    c = apns.client()
    c.settle(0.1)
    assert c.max_streams == 1  # until the first valid token
    assert apns.send(dev, client=c)[0] == 200
    c.settle(0.1)
    assert c.max_streams == 1000
    newer = make_token(apns.sim.state_dir, iat=time.time() - 5)
    assert reason_of(apns.send(dev, token=newer, client=c)) == (429, "TooManyProviderTokenUpdates")
    assert apns.send(dev, client=c)[0] == 200  # the first token still works
    apns.sim.control(
        "PATCH", "/_sim/apns/config", {"token_update_min_interval": 0, "max_concurrent_streams": 50}
    )
    assert apns.send(dev, token=newer, client=c)[0] == 200
    fresh = apns.client()
    assert apns.send(dev, client=fresh)[0] == 200
    fresh.settle(0.1)
    assert fresh.max_streams == 50


def test_token_expires_after_an_hour_on_a_fake_clock(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    with running_simulator(tmp_path / "s", clock=clock) as sim:
        a = Apns(sim, clock.time())
        dev = sim.mint("apns")[0]["token"]
        assert a.send(dev)[0] == 200
        clock.advance(3601)
        assert reason_of(a.send(dev)) == (403, "ExpiredProviderToken")
        for c in a.clients:
            c.close()


# -- certificates -------------------------------------------------------------------------------


def test_certificate_auth(apns: Apns, tmp_path: Path) -> None:
    dev = apns.sim.mint("apns")[0]["token"]
    prod = apns.sim.control(
        "POST", "/_sim/apns/certificates", {"bundle_id": TOPIC, "environment": "production"}
    )
    assert (
        "Apple Push Services: com.example.pushsim" in open(prod["pem_file"]).read()
        or prod["cert_pem"]
    )
    c = apns.client(cert_file=prod["pem_file"])
    status, _, raw = c.request(
        f"/3/device/{dev}", [("apns-push-type", "alert")]
    )  # no JWT, no topic
    assert status == 200, raw
    status, _, raw = c.request(f"/3/device/{dev}", [("apns-topic", "com.other.app")])
    assert (status, json.loads(raw)["reason"]) == (400, "TopicDisallowed")
    sandbox = apns.sim.control(
        "POST", "/_sim/apns/certificates", {"bundle_id": TOPIC, "environment": "sandbox"}
    )
    c2 = apns.client(cert_file=sandbox["pem_file"])
    status, _, raw = c2.request(f"/3/device/{dev}", [])
    assert (status, json.loads(raw)["reason"]) == (403, "BadCertificateEnvironment")
    # a certificate the CA signed but that is no push certificate
    ca_key, ca_cert = load_ca(apns.sim.state_dir)
    from cryptography.hazmat.primitives import serialization

    key, cert = issue_leaf(ca_key, ca_cert, "not a push cert", server=False)
    pem = tmp_path / "plain.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    c3 = apns.client(cert_file=str(pem))
    status, _, raw = c3.request(f"/3/device/{dev}", apns.headers())
    assert (status, json.loads(raw)["reason"]) == (403, "BadCertificate")


# -- device side ---------------------------------------------------------------------------------


def test_offline_device_gets_only_the_latest_on_reconnection(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]
    apns.sim.control("POST", f"/_sim/devices/{dev['id']}/online", {"online": False})
    far = str(int(time.time()) + 3600)
    assert apns.send(dev["token"], body=b'{"aps":{"alert":"1"}}', apns_expiration=far)[0] == 200
    assert apns.send(dev["token"], body=b'{"aps":{"alert":"2"}}', apns_expiration=far)[0] == 200
    assert (
        apns.send(dev["token"], body=b'{"aps":{"alert":"now-or-never"}}', apns_expiration="0")[0]
        == 200
    )
    assert apns.sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"] == []
    apns.sim.control("POST", f"/_sim/devices/{dev['id']}/online", {"online": True})
    inbox = apns.sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"]
    assert [m["payload"]["aps"]["alert"] for m in inbox] == ["2"]
    assert inbox[0]["delivered_at"] > inbox[0]["at"]


def test_collapse_id_replaces_on_the_device(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]
    apns.send(dev["token"], body=b'{"aps":{"alert":"score 1-0"}}', apns_collapse_id="match")
    _, hdrs, _ = apns.send(
        dev["token"], body=b'{"aps":{"alert":"score 2-0"}}', apns_collapse_id="match"
    )
    inbox = apns.sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")["messages"]
    assert inbox[0]["replaced_by"] == hdrs["apns-id"] and "replaced_by" not in inbox[1]


def test_hammering_one_device_is_too_many_requests(apns: Apns) -> None:
    apns.sim.control("PATCH", "/_sim/apns/config", {"device_rate": 1, "device_burst": 3})
    dev = apns.sim.mint("apns")[0]["token"]
    results = [apns.send(dev)[0] for _ in range(5)]
    assert results[:3] == [200, 200, 200] and 429 in results[3:]
    assert reason_of(apns.send(dev))[1] == "TooManyRequests"
    other = apns.sim.mint("apns")[0]["token"]
    assert apns.send(other)[0] == 200


# -- connection behaviour --------------------------------------------------------------------------


def test_operator_failures_500_503(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]["token"]
    apns.sim.control("PATCH", "/_sim/apns/config", {"fail_with": 500})
    assert reason_of(apns.send(dev)) == (500, "InternalServerError")
    apns.sim.control("PATCH", "/_sim/apns/config", {"fail_with": 503})
    assert reason_of(apns.send(dev)) == (503, "ServiceUnavailable")
    apns.sim.control("PATCH", "/_sim/apns/config", {"fail_with": None})
    assert apns.send(dev)[0] == 200


def test_draining_answers_shutdown_then_goaway(apns: Apns) -> None:
    dev = apns.sim.mint("apns")[0]["token"]
    c = apns.client()
    assert apns.send(dev, client=c)[0] == 200
    apns.sim.control("PATCH", "/_sim/apns/config", {"draining": True})
    assert reason_of(apns.send(dev, client=c)) == (503, "Shutdown")
    c.settle(0.3)
    assert c.goaway is not None and json.loads(c.goaway.additional_data or b"") == {
        "reason": "Shutdown"
    }


def test_idle_timeout_goaway(apns: Apns) -> None:
    apns.sim.control("PATCH", "/_sim/apns/config", {"idle_timeout": 0.3})
    c = apns.client()
    c.settle(1.0)
    assert c.goaway is not None and json.loads(c.goaway.additional_data or b"") == {
        "reason": "IdleTimeout"
    }


def test_stop_sends_goaway_shutdown(tmp_path: Path) -> None:
    with running_simulator(tmp_path / "s") as sim:
        c = H2Client(sim.endpoints["apns"], sim.endpoints["ca_file"])
        c.settle(0.05)
    c.settle(0.5)
    assert c.goaway is not None and json.loads(c.goaway.additional_data or b"") == {
        "reason": "Shutdown"
    }
    c.close()


def test_control_routes_reject_bad_input(apns: Apns) -> None:
    import urllib.error

    for path, body in [
        ("/_sim/apns/keys", {"team_id": "short"}),
        ("/_sim/apns/keys", {"environment": "staging"}),
        ("/_sim/apns/certificates", {"bundle_id": "bad bundle"}),
    ]:
        with pytest.raises(urllib.error.HTTPError) as exc:
            apns.sim.control("POST", path, body)
        assert exc.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as exc:
        apns.sim.control("PATCH", "/_sim/apns/config", {"fail_with": 404})
    assert exc.value.code == 400
    assert apns.sim.control("GET", "/_sim/apns/config")["production"]["fail_with"] is None


def test_h2c_and_http11_without_tls(sim_plain: SimulatorHandle) -> None:
    a = Apns(sim_plain)
    dev = sim_plain.mint("apns")[0]["token"]
    assert a.send(dev)[0] == 200
    # HTTP/1.1 answers too (the simulator is lenient here; APNs itself only speaks h2)
    import http.client

    parts = urlsplit(sim_plain.endpoints["apns"])
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    conn.request("POST", f"/3/device/{dev}", PAYLOAD, dict(a.headers()))
    assert conn.getresponse().status == 200
    for c in a.clients:
        c.close()
