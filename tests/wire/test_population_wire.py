"""A declared population over the control API: CSV token tables, paged mints, the limit."""

from __future__ import annotations

import csv
import io
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import pytest

from simulator.testing import fcm
from simulator.testing.handle import (
    SimulatorHandle,
    apns_credentials,
    apns_provider_token,
    running_simulator,
)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorHandle]:
    with running_simulator(tmp_path_factory.mktemp("population") / "state") as h:
        doc = h.control("POST", "/_sim/population", {"apns": 1_000_000, "fcm": 300, "webpush": 20})
        assert doc["declared"]["apns"] == {
            "count": 1_000_000,
            "first": "apns-1",
            "last": "apns-1000000",
        }
        yield h


def read_csv(sim: SimulatorHandle, provider: str, rows: int | None = None) -> list[dict[str, str]]:
    url = f"{sim.endpoints['control']}/_sim/population/{provider}.csv"
    with urllib.request.urlopen(url, timeout=60) as resp:
        assert resp.headers["content-type"].startswith("text/csv")
        if rows is None:
            text = resp.read().decode()
        else:  # the head of a long stream, then hang up
            text = "".join(resp.readline().decode() for _ in range(rows + 1))
    return list(csv.DictReader(io.StringIO(text)))


def apns_send(sim: SimulatorHandle, token: str) -> httpx.Response:
    meta, _ = apns_credentials(sim.state_dir)
    ctx = ssl.create_default_context(cafile=sim.endpoints["ca_file"])
    with httpx.Client(http2=True, verify=ctx) as c:
        return c.post(
            f"{sim.endpoints['apns']}/3/device/{token}",
            headers={
                "authorization": f"bearer {apns_provider_token(sim.state_dir)}",
                "apns-topic": meta["bundle_id"],
            },
            content=b'{"aps":{"alert":"hi"}}',
        )


def forged(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def test_declared_tokens_are_served_and_forged_ones_refused(big: SimulatorHandle) -> None:
    stats = big.control("GET", "/_sim/stats")
    assert stats["devices"]["apns"] == {"live": 1_000_000, "total": 1_000_000}
    head = read_csv(big, "apns", rows=3)
    assert [r["id"] for r in head] == ["apns-1", "apns-2", "apns-3"]
    last = big.control("GET", "/_sim/devices/apns-1000000")
    assert apns_send(big, last["token"]).status_code == 200
    r = apns_send(big, forged(last["token"]).lower().replace("g", "0"))
    assert r.status_code == 400 and r.json()["reason"] == "BadDeviceToken"

    rows = read_csv(big, "fcm")
    assert len(rows) == 300 and rows[0]["id"] == "fcm-1000001"
    with fcm.client(big) as c:
        token = fcm.access_token(big)
        assert fcm.send(c, token, {"token": rows[-1]["token"]}).status_code == 200
        r = fcm.send(c, token, {"token": forged(rows[-1]["token"])})
        assert r.status_code == 400 and fcm.error_code(r) == "INVALID_ARGUMENT"

    subs = read_csv(big, "webpush")
    assert len(subs) == 20 and subs[0]["endpoint"].startswith(big.endpoints["webpush"] + "/wp/")
    ctx = ssl.create_default_context(cafile=big.endpoints["ca_file"])
    with httpx.Client(http2=True, verify=ctx) as c:
        r = c.post(forged(subs[0]["endpoint"]), headers={"ttl": "60"}, content=b"")
    assert r.status_code == 404


def test_a_large_mint_answers_in_pages(big: SimulatorHandle) -> None:
    doc = big.control("POST", "/_sim/devices", {"provider": "fcm", "count": 150_000})
    assert len(doc["devices"]) == 100_000 and doc["count"] == 150_000
    rest = big.control("GET", doc["next"])
    assert len(rest["devices"]) == 50_000 and rest["next"] is None
    numbers = [int(d["id"].split("-")[1]) for d in doc["devices"] + rest["devices"]]
    assert numbers == list(range(numbers[0], numbers[0] + 150_000))


def test_more_than_memory_holds_is_a_400_naming_the_limit(big: SimulatorHandle) -> None:
    for path, body in [
        ("/_sim/population", {"apns": 10**13}),
        ("/_sim/devices", {"provider": "apns", "count": 10**13}),
    ]:
        req = urllib.request.Request(
            big.endpoints["control"] + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json"},  # a write says JSON (control_guard)
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 400
        doc = json.loads(err.value.read())
        assert "more devices fit in this machine's free memory" in doc["error"], doc
    summary = big.control("GET", "/_sim/population")
    assert summary["capacity"] > 1_000_000 and summary["devices"]["apns"]["total"] == 1_000_000
