"""Real APNs clients (aioapns, curl) against the simulator: only host, port and CA change."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from urllib.parse import urlsplit

from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsDevelopmentClientProtocol, APNsProductionClientProtocol

from simulator.testing.handle import SimulatorHandle, apns_credentials, apns_provider_token

TOPIC = "com.example.pushsim"


def point_at(client: APNs, url: str, sandbox: bool = False) -> None:
    """Aim an aioapns client at the simulator: its protocol class names host and port."""
    parts = urlsplit(url)
    base = APNsDevelopmentClientProtocol if sandbox else APNsProductionClientProtocol
    client.pool.protocol_class = type(
        "SimulatorProtocol", (base,), {"APNS_SERVER": parts.hostname, "APNS_PORT": parts.port}
    )


def key_client(sim: SimulatorHandle, sandbox: bool = False) -> APNs:
    meta, key = apns_credentials(sim.state_dir)
    ctx = ssl.create_default_context(cafile=sim.endpoints["ca_file"])
    client = APNs(
        key=key,
        key_id=meta["key_id"],
        team_id=meta["team_id"],
        topic=meta["bundle_id"],
        use_sandbox=sandbox,
        ssl_context=ctx,
        max_connection_attempts=1,
    )
    point_at(client, sim.endpoints["apns_sandbox" if sandbox else "apns"], sandbox)
    return client


def test_aioapns_token_auth_success_and_errors(sim: SimulatorHandle) -> None:
    live, dead = sim.mint("apns", 2)
    sim.control("DELETE", f"/_sim/devices/{dead['id']}")
    sandbox_dev = sim.mint("apns", environment="sandbox")[0]

    async def main() -> list[tuple[str, str | None, int | None]]:
        client = key_client(sim)
        sb = key_client(sim, sandbox=True)
        reqs = [
            NotificationRequest(
                live["token"], {"aps": {"alert": "hello"}}, push_type=PushType.ALERT
            ),
            NotificationRequest(dead["token"], {"aps": {"alert": "hello"}}),
            NotificationRequest("00" * 32, {"aps": {"alert": "hello"}}),
            NotificationRequest(live["token"], {"aps": {"alert": "x" * 5000}}),
            NotificationRequest(
                live["token"], {"aps": {}}, push_type=PushType.BACKGROUND, priority=10
            ),
            NotificationRequest(live["token"], {"aps": {"alert": "c"}}, collapse_key="k" * 70),
        ]
        out = []
        for r in reqs:
            res = await asyncio.wait_for(client.send_notification(r), 10)
            out.append((res.status, res.description, res.timestamp))
        res = await asyncio.wait_for(
            sb.send_notification(
                NotificationRequest(sandbox_dev["token"], {"aps": {"alert": "sb"}}, time_to_live=60)
            ),
            10,
        )
        out.append((res.status, res.description, res.timestamp))
        client.pool.close()
        sb.pool.close()
        return out

    results = asyncio.run(main())
    assert results[0] == ("200", None, None)
    assert results[1][:2] == ("410", "Unregistered") and (results[1][2] or 0) > 1_600_000_000_000
    assert results[2][:2] == ("400", "BadDeviceToken")
    assert results[3][:2] == ("413", "PayloadTooLarge")
    assert results[4][:2] == ("400", "BadPriority")
    assert results[5][:2] == ("400", "BadCollapseId")
    assert results[6][:2] == ("200", None)
    inbox = sim.control("GET", f"/_sim/devices/{live['id']}/inbox")["messages"]
    assert inbox[0]["payload"] == {"aps": {"alert": "hello"}} and inbox[0]["push_type"] == "alert"


def test_aioapns_certificate_auth(sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    cert = sim.control(
        "POST", "/_sim/apns/certificates", {"bundle_id": TOPIC, "environment": "production"}
    )
    wrong = sim.control(
        "POST", "/_sim/apns/certificates", {"bundle_id": TOPIC, "environment": "sandbox"}
    )

    async def send(pem_file: str) -> tuple[str, str | None]:
        ctx = ssl.create_default_context(cafile=sim.endpoints["ca_file"])
        client = APNs(client_cert=pem_file, ssl_context=ctx, max_connection_attempts=1)
        point_at(client, sim.endpoints["apns"])
        assert client.pool.apns_topic == TOPIC  # aioapns reads the topic from the certificate's UID
        res = await asyncio.wait_for(
            client.send_notification(NotificationRequest(dev["token"], {"aps": {"alert": "c"}})), 10
        )
        client.pool.close()
        return res.status, res.description

    assert asyncio.run(send(cert["pem_file"])) == ("200", None)
    assert asyncio.run(send(wrong["pem_file"])) == ("403", "BadCertificateEnvironment")


def curl(
    sim: SimulatorHandle,
    path: str,
    *headers: str,
    body: str = '{"aps":{"alert":"hi"}}',
    extra: tuple[str, ...] = (),
) -> tuple[int, str, str]:
    args = [
        "curl",
        "-s",
        "--http2",
        "--cacert",
        sim.endpoints["ca_file"],
        "-D",
        "-",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        *extra,
    ]
    for h in headers:
        args += ["-H", h]
    args += ["-X", "POST", "--data-binary", body, sim.endpoints["apns"] + path]
    out = subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
    text, _, code = out.rpartition("\n")
    head, _, resp_body = text.partition("\n\n")  # text mode turned CRLF into LF
    return int(code), head.lower(), resp_body


def test_curl_success_and_error_paths(sim: SimulatorHandle) -> None:
    token = apns_provider_token(sim.state_dir)
    dev = sim.mint("apns")[0]
    auth = f"authorization: bearer {token}"
    code, head, body = curl(
        sim,
        f"/3/device/{dev['token']}",
        auth,
        f"apns-topic: {TOPIC}",
        "apns-push-type: alert",
        "apns-id: 0f3c1a58-1111-4222-8333-444455556666",
    )
    assert code == 200 and body == "" and "apns-id: 0f3c1a58-1111-4222-8333-444455556666" in head
    code, _, body = curl(
        sim, f"/3/device/{dev['token']}", auth, f"apns-topic: {TOPIC}", "apns-push-type: voip"
    )
    assert (code, json.loads(body)) == (400, {"reason": "BadTopic"})
    code, _, body = curl(sim, f"/3/device/{dev['token']}", auth)
    assert (code, json.loads(body)) == (400, {"reason": "MissingTopic"})
    cert = sim.control(
        "POST", "/_sim/apns/certificates", {"bundle_id": TOPIC, "environment": "both"}
    )
    code, _, body = curl(sim, f"/3/device/{dev['token']}", extra=("--cert", cert["pem_file"]))
    assert code == 200 and body == ""
