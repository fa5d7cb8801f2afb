"""The shipped pytest plugin's fixtures, as a user's suite would use them."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import httpx

from simulator.testing.handle import SimulatorHandle


def test_pushsim_fixture_serves_apns_with_a_minted_token(
    pushsim: SimulatorHandle, pushsim_apns_token: Callable[[], str]
) -> None:
    device = pushsim.mint("apns")[0]
    with httpx.Client(
        http2=True, verify=ssl.create_default_context(cafile=pushsim.endpoints["ca_file"])
    ) as client:
        resp = client.post(
            f"{pushsim.endpoints['apns']}/3/device/{device['token']}",
            headers={
                "authorization": f"bearer {pushsim_apns_token()}",
                "apns-topic": device["bundle_id"],
            },
            content=b'{"aps":{"alert":"hi"}}',
        )
    assert resp.status_code == 200 and resp.http_version == "HTTP/2"
    inbox = pushsim.control("GET", f"/_sim/devices/{device['id']}/inbox")
    assert inbox["messages"][0]["payload"]["aps"] == {"alert": "hi"}


def test_pushsim_plain_fixture_speaks_http1_without_tls(pushsim_plain: SimulatorHandle) -> None:
    assert pushsim_plain.endpoints["apns"].startswith("http://")
    resp = httpx.post(f"{pushsim_plain.endpoints['apns']}/3/device/{'0' * 64}", content=b"{}")
    assert resp.status_code == 403 and resp.json() == {"reason": "MissingProviderToken"}
