"""Node clients against the simulator, unchanged but for the base URL and the trusted CA.

- npm ``web-push`` (``tests/node/send.js``): ``setVapidDetails`` + ``sendNotification`` with
  ``NODE_EXTRA_CA_CERTS=<state dir>/ca.pem``; the device inbox holds the decrypted payload,
  and after an uninstall web-push rejects with a WebPushError carrying statusCode 410.
- node's built-in ``http2`` + ``crypto`` as an APNs provider client (``tests/node/apns.js``):
  an ES256 provider token signed from the ``.p8`` gets 200 + apns-id, no token gets 403
  MissingProviderToken.

web-push is installed into ``tests/node/node_modules`` (gitignored) on first use; the tests
skip only when node/npm are not on PATH or that install fails.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nodejs import NODE_DIR, require_node

from simulator.testing.handle import SimulatorHandle, running_simulator


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("node") / "state") as handle:
        yield handle


def run_node(
    sim: SimulatorHandle, script: str, request: dict[str, Any], tmp: Path, trust_ca: bool = True
) -> Any:
    """Run ``tests/node/<script>`` with the request as a JSON file; returns its JSON line."""
    node = require_node()
    req_file = tmp / f"{script}.request.json"
    req_file.write_text(json.dumps(request))
    env = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
    if trust_ca:
        env["NODE_EXTRA_CA_CERTS"] = sim.endpoints["ca_file"]
    proc = subprocess.run(
        [node, str(NODE_DIR / script), str(req_file)],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def vapid_for_node(state_dir: Path) -> dict[str, str]:
    """web-push's setVapidDetails arguments from the state dir's vapid.json.

    web-push wants the private key as the raw 32-byte P-256 scalar, base64url; vapid.json
    holds it as PEM, so it is derived here (and checked against the public key).
    """
    meta = json.loads((state_dir / "webpush" / "vapid.json").read_text())
    key = serialization.load_pem_private_key(meta["private_key"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert b64url(public) == meta["public_key"]
    return {
        "subject": meta["subject"],
        "publicKey": meta["public_key"],
        "privateKey": b64url(scalar),
    }


def inbox(sim: SimulatorHandle, dev: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")[
        "messages"
    ]
    return messages


def test_node_web_push_delivers_and_gets_410_after_uninstall(
    sim: SimulatorHandle, web_push_installed: None, tmp_path: Path
) -> None:
    vapid = vapid_for_node(sim.state_dir)
    dev = sim.mint("webpush", application_server_key=vapid["publicKey"])[0]
    payload = {"title": "Hello from node", "correlation_id": "node-1"}
    request = {
        "subscription": dev["subscription"],
        "payload": json.dumps(payload),
        "vapid": vapid,
        "options": {"TTL": 120, "urgency": "high", "topic": "nodegreeting"},
    }

    res = run_node(sim, "send.js", request, tmp_path)
    assert res["ok"] is True, res
    assert res["statusCode"] == 201
    assert res["headers"]["location"].startswith(sim.endpoints["webpush"] + "/")
    [msg] = inbox(sim, dev)
    assert msg["payload"] == payload and msg["correlation_id"] == "node-1"
    assert msg["content_encoding"] == "aes128gcm"
    assert msg["ttl"] == 120 and msg["urgency"] == "high" and msg["topic"] == "nodegreeting"
    assert msg["vapid"]["k"] == vapid["publicKey"] and msg["vapid"]["sub"] == vapid["subject"]

    sim.control("DELETE", f"/_sim/devices/{dev['id']}")
    res = run_node(sim, "send.js", {**request, "payload": "anyone there?"}, tmp_path)
    assert res["ok"] is False and res["name"] == "WebPushError", res
    assert res["statusCode"] == 410
    assert len(inbox(sim, dev)) == 1


def test_node_web_push_needs_the_simulators_ca(
    sim: SimulatorHandle, web_push_installed: None, tmp_path: Path
) -> None:
    """Without NODE_EXTRA_CA_CERTS node refuses the simulator's certificate: the CA is what
    makes it work, nothing is switched off."""
    vapid = vapid_for_node(sim.state_dir)
    dev = sim.mint("webpush", application_server_key=vapid["publicKey"])[0]
    request = {"subscription": dev["subscription"], "payload": "x", "vapid": vapid}
    res = run_node(sim, "send.js", request, tmp_path, trust_ca=False)
    assert res["ok"] is False and res.get("statusCode") is None, res
    assert "certificate" in res["message"], res
    assert inbox(sim, dev) == []


def test_node_web_push_legacy_aesgcm(
    sim: SimulatorHandle, web_push_installed: None, tmp_path: Path
) -> None:
    vapid = vapid_for_node(sim.state_dir)
    dev = sim.mint("webpush", application_server_key=vapid["publicKey"])[0]
    request = {
        "subscription": dev["subscription"],
        "payload": "legacy coding from node",
        "vapid": vapid,
        "options": {"TTL": 60, "contentEncoding": "aesgcm"},
    }
    res = run_node(sim, "send.js", request, tmp_path)
    assert res["ok"] is True and res["statusCode"] == 201, res
    [msg] = inbox(sim, dev)
    assert msg["content_encoding"] == "aesgcm"
    assert msg["payload_text"] == "legacy coding from node"


def test_node_web_push_wrong_vapid_key_is_refused(
    sim: SimulatorHandle, web_push_installed: None, tmp_path: Path
) -> None:
    """A subscription bound to the state dir's key refuses another application server key."""
    vapid = vapid_for_node(sim.state_dir)
    dev = sim.mint("webpush", application_server_key=vapid["publicKey"])[0]
    other = ec.generate_private_key(ec.SECP256R1())
    other_vapid = {
        "subject": vapid["subject"],
        "publicKey": b64url(
            other.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        ),
        "privateKey": b64url(other.private_numbers().private_value.to_bytes(32, "big")),
    }
    request = {"subscription": dev["subscription"], "payload": "x", "vapid": other_vapid}
    res = run_node(sim, "send.js", request, tmp_path)
    assert res["ok"] is False and res["name"] == "WebPushError", res
    assert res["statusCode"] == 403
    assert inbox(sim, dev) == []


def test_node_http2_apns_provider_token(sim: SimulatorHandle, tmp_path: Path) -> None:
    meta = json.loads((sim.state_dir / "apns" / "apns.json").read_text())
    dev = sim.mint("apns")[0]
    p8 = sim.state_dir / "apns" / f"AuthKey_{meta['key_id']}.p8"
    payload = {"aps": {"alert": "hello from node:http2"}, "correlation_id": "node-apns-1"}
    request = {
        "url": sim.endpoints["apns"],
        "p8": str(p8),
        "keyId": meta["key_id"],
        "teamId": meta["team_id"],
        "sends": [
            {"token": dev["token"], "topic": meta["bundle_id"], "auth": True, "payload": payload},
            {"token": dev["token"], "topic": meta["bundle_id"], "auth": False},
        ],
    }
    res = run_node(sim, "apns.js", request, tmp_path)
    assert res["alpn"] == "h2"
    ok, missing = res["results"]
    assert ok["status"] == 200 and ok["body"] == ""
    assert ok["apnsId"] and len(ok["apnsId"]) == 36
    assert missing["status"] == 403
    assert json.loads(missing["body"]) == {"reason": "MissingProviderToken"}
    [msg] = inbox(sim, dev)
    assert msg["payload"] == payload
