"""``pushsim run`` end to end: the reference sender on smoke, and a broken sender via --target.

The broken sender is a small test double (aiohttp API + httpx HTTP/2 to the simulator's
APNs) that never prunes dead tokens: the harness must fail ``max_stale_tokens_left``
with a non-zero exit and a junit failure that says what was measured.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
from aiohttp import web

from simulator.testing.handle import running_simulator

ROOT = Path(__file__).resolve().parents[2]
PUSHSIM = [sys.executable, "-m", "pushsim"]


class NeverPrunesSender:
    """A sender API that delivers through APNs, never prunes a token, ignores Retry-After."""

    def __init__(self, state_dir: Path, endpoints: dict[str, str], retries: int = 0) -> None:
        self.retries = retries
        meta = json.loads((state_dir / "apns" / "apns.json").read_text())
        self.key_id, self.team_id, self.bundle_id = (
            meta["key_id"],
            meta["team_id"],
            meta["bundle_id"],
        )
        self.key = (state_dir / "apns" / f"AuthKey_{self.key_id}.p8").read_text()
        self.apns = endpoints["apns"]
        self.ca = endpoints["ca_file"]
        self.devices: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.client: httpx.AsyncClient | None = None
        self.bearer: str | None = None

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        reg_id = uuid.uuid4().hex
        for old in [
            k
            for k, d in self.devices.items()
            if d["device_id"] and d["device_id"] == body.get("device_id")
        ]:
            del self.devices[old]  # replaced by the new token (this much it does right)
        self.devices[reg_id] = {
            "id": reg_id,
            "user_id": body["user_id"],
            "provider": body["provider"],
            "token": body.get("token"),
            "device_id": body.get("device_id"),
            "status": "active",
        }
        return web.json_response(self.devices[reg_id], status=201)

    async def notify(self, request: web.Request) -> web.Response:
        body = await request.json()
        to = body["to"]
        if "user" in to:
            tokens = [d["token"] for d in self.devices.values() if d["user_id"] == to["user"]]
        else:
            tokens = [t["token"] for t in to.get("tokens", [])]
        payload = json.dumps(
            {"aps": {"alert": body.get("notification", {})}, **body.get("data", {})}
        ).encode()
        for token in tokens:
            task = asyncio.create_task(self.send(token, payload))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.json_response(
            {"id": uuid.uuid4().hex, "status": "accepted", "targets": len(tokens)}, status=202
        )

    async def send(self, token: str, payload: bytes) -> None:
        assert self.client is not None
        if self.bearer is None:  # one provider token, reused (APNs refuses frequent updates)
            self.bearer = jwt.encode(
                {"iss": self.team_id, "iat": int(time.time())},
                self.key,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
        bearer = self.bearer
        headers = {
            "authorization": f"bearer {bearer}",
            "apns-topic": self.bundle_id,
            "apns-push-type": "alert",
        }
        for _ in range(1 + self.retries):
            try:
                resp = await self.client.post(
                    f"{self.apns}/3/device/{token}", content=payload, headers=headers
                )
            except httpx.HTTPError:
                return
            # a 410 changes nothing: the token stays active; a 503 or 429 is retried at once,
            # whatever its Retry-After says
            if resp.status_code not in (429, 503):
                return
            await asyncio.sleep(0.05)

    async def list_devices(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "active")
        return web.json_response(
            {"devices": [d for d in self.devices.values() if d["status"] == status]}
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "queue_depth": len(self.tasks)})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/devices", self.register)
        app.router.add_get("/v1/devices", self.list_devices)
        app.router.add_post("/v1/notifications", self.notify)
        app.router.add_get("/v1/health", self.health)
        return app


@contextmanager
def serving(sender: NeverPrunesSender) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    url: list[str] = []
    ready = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        sender.client = httpx.AsyncClient(
            http2=True, verify=ssl.create_default_context(cafile=sender.ca), timeout=10
        )
        runner = web.AppRunner(sender.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        ready.set()
        await stop.wait()
        await runner.cleanup()
        await sender.client.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(20)
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)


STALE = """\
name: never-prunes
description: uninstalls on APNs; a sender must prune what APNs answers Unregistered
duration: 8s
drain_timeout: 5s
population: {devices: {apns: 24}, users: 24}
load: {shape: steady, users: 3, rate_per_user: 5}
traffic: {to: {user: 1.0}, push_type: {alert: 1.0}}
faults:
  - {id: gone, kind: token_churn, provider: apns, action: uninstall, share: 0.5,
     start: 1s, duration: 2s}
objectives:
  max_stale_tokens_left: 0
  max_lost: 0
"""


def run_against_broken_sender(
    tmp_path: Path, name: str, scenario_text: str, retries: int = 0
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`pushsim run` a scenario with `--target` a NeverPrunesSender; (process, out dir)."""
    scenario = tmp_path / name
    scenario.write_text(scenario_text)
    out = tmp_path / "out"
    with running_simulator(tmp_path / "sim") as sim:
        # httpx's HTTP/2 connection wedges when the peer lowers MAX_CONCURRENT_STREAMS below
        # the streams it has in flight (httpcore; httpx2 #1216), as APNs does after every
        # rejection: this sender's sins under test are pruning and Retry-After, not that.
        sim.control("PATCH", "/_sim/apns/config", {"narrow_after_rejection": False})
        sender = NeverPrunesSender(sim.state_dir, sim.endpoints, retries=retries)
        with serving(sender) as url:
            proc = subprocess.run(
                [
                    *PUSHSIM,
                    "run",
                    str(scenario),
                    "--target",
                    url,
                    "--simulator",
                    str(sim.state_dir),
                    "--out",
                    str(out),
                    "--no-progress",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT,
            )
    return proc, out


def test_a_sender_that_never_prunes_fails_the_stale_token_objective(tmp_path: Path) -> None:
    proc, out = run_against_broken_sender(tmp_path, "never-prunes.yaml", STALE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    verdicts = {v["name"]: v for v in report["objectives"]}
    stale = verdicts["max_stale_tokens_left"]
    assert not stale["passed"]
    assert stale["measured"] >= 1
    assert verdicts["max_lost"]["passed"], report["measures"].get("lost_examples")
    assert report["measures"]["wasted_sends"] >= 1
    junit = ET.parse(out / "junit.xml").getroot()
    failure = junit.find("testcase[@name='max_stale_tokens_left']/failure")
    assert failure is not None
    assert (
        failure.get("message")
        == f"stale_tokens_left: measured {int(stale['measured'])}, required <= 0"
    )
    assert "FAIL] max_stale_tokens_left" in proc.stdout
    page = (out / "report.html").read_text()
    assert page.count("<svg") == 5  # throughput, latency, retries, cleanup, CPU per process
    assert "<h2>Where the time went</h2>" in page


def test_pushsim_run_quick_smoke_on_the_reference_sender(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    proc = subprocess.run(
        [*PUSHSIM, "run", "--quick", "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "pushsim run smoke: PASSED" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    m = report["measures"]
    assert m["accepted"] > 0
    assert m["lost"] == 0
    assert m["delivered"] == m["deliverable"] > 0
    providers = {
        d.split("-")[0]
        for s in json.loads((out / "locust-config.json").read_text())["users"]
        for d in (x["device_id"] for x in s["devices"])
    }
    assert providers == {"apns", "fcm", "webpush"}
    junit = ET.parse(out / "junit.xml").getroot()
    assert junit.get("failures") == "0" and int(junit.get("tests", "0")) >= 5
    assert (out / "locust_stats.csv").exists() and (out / "locust.html").exists()


IMPATIENT = """\
name: ignores-retry-after
duration: 7s
drain_timeout: 5s
population: {devices: {apns: 10}, users: 10}
load: {shape: steady, users: 2, rate_per_user: 5}
traffic: {to: {user: 1.0}, push_type: {alert: 1.0}}
faults:
  - {id: down, kind: outage, provider: apns, mode: status, retry_after: 5, start: 1s, duration: 3s}
objectives:
  max_retry_after_violations: 0
"""


def test_a_sender_that_ignores_retry_after_fails_that_objective(tmp_path: Path) -> None:
    proc, out = run_against_broken_sender(tmp_path, "impatient.yaml", IMPATIENT, retries=3)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    verdict = report["objectives"][0]
    assert verdict["name"] == "max_retry_after_violations"
    assert not verdict["passed"]
    assert verdict["measured"] >= 1
    assert report["faults"] and report["faults"][0]["kind"] == "outage"
    junit = ET.parse(out / "junit.xml").getroot()
    failure = junit.find("testcase[@name='max_retry_after_violations']/failure")
    assert failure is not None
    assert failure.get("message") == (
        f"retry_after_violations: measured {int(verdict['measured'])}, required <= 0"
    )
