"""The thin path over a real socket: curl-like h2 client against the APNs listener."""

from __future__ import annotations

import json
import subprocess

from simulator.testing.handle import SimulatorHandle, apns_provider_token


def provider_token(sim: SimulatorHandle, iat: float | None = None) -> str:
    return apns_provider_token(sim.state_dir, iat)


def curl(
    sim: SimulatorHandle, token: str, *headers: str, body: str = '{"aps":{"alert":"hi"}}'
) -> tuple[int, str]:
    args = [
        "curl",
        "-s",
        "--http2",
        "--cacert",
        sim.endpoints["ca_file"],
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
    ]
    for h in headers:
        args += ["-H", h]
    args += ["-X", "POST", "--data-binary", body, f"{sim.endpoints['apns']}/3/device/{token}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
    text, _, code = out.rpartition("\n")
    return int(code), text


def test_curl_success_and_missing_token(sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    code, body = curl(sim, dev["token"])
    assert code == 403 and json.loads(body) == {"reason": "MissingProviderToken"}
    code, body = curl(
        sim,
        dev["token"],
        f"authorization: bearer {provider_token(sim)}",
        "apns-topic: com.example.pushsim",
    )
    assert code == 200 and body == ""
    inbox = sim.control("GET", f"/_sim/devices/{dev['id']}/inbox")
    assert inbox["messages"][0]["payload"] == {"aps": {"alert": "hi"}}


def test_uninstalled_token_is_unregistered_with_timestamp(sim: SimulatorHandle) -> None:
    dev = sim.mint("apns")[0]
    sim.control("DELETE", f"/_sim/devices/{dev['id']}")
    code, body = curl(
        sim,
        dev["token"],
        f"authorization: bearer {provider_token(sim)}",
        "apns-topic: com.example.pushsim",
    )
    assert code == 410
    parsed = json.loads(body)
    assert parsed["reason"] == "Unregistered" and parsed["timestamp"] > 1_600_000_000_000
