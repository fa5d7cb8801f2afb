"""Sender core vs the reference client libraries, in one run against one simulator.

For each provider, N notifications (each to its own simulated device) are sent at the same
concurrency by pushsim's sender core and by the peer library:

- APNs: ``aioapns`` (``APNs.send_notification``);
- FCM: ``firebase-admin`` (``messaging.send_each_async``, in batches of the concurrency);
- Web Push: ``pywebpush`` (``webpush_async`` over a shared aiohttp session, with the
  VAPID header signed once per push service and passed in, as we cache ours).

Every client gets the same devices' simulator, the same payload and the same number of
sends in flight; the APNs clients each get one connection.

"Ours" is the sender core itself, not its HTTP API: the dispatcher with its provider
clients, attempts and outcomes recorded in the outbox, until every delivery is finished
("incl. durable accept" adds ``Sender.accept``: the outbox commit before the 202, and
fan-out). The simulator runs as its own process.

Figures: notifications per second and our ratio over each peer, plus the CPU each client
process and the simulator spent per notification in the timed section (µs/notif). The
machine is shared, so throughput is noisy; the CPU figures are steadier. Client and
simulator each need a core: at these rates the simulator is often the bottleneck.

Then the API path (``benchmarks/sender_api.py``; ``--no-api`` skips it): ``pushsim
sender`` processes on SQLite and on PostgreSQL, the single and the batch API against the
core's direct APNs figure, and two PostgreSQL instances against one; ``--profile`` adds
where the API path's time goes.

    .venv/bin/python benchmarks/sender_bench.py [-n 2000] [-c 100] [--rounds 2] \
        [--providers apns,fcm,webpush] [--batch 100] [--no-api] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sender.api.validate import NotificationRequest, TokenTarget  # noqa: E402
from sender.config.settings import ProviderLimits  # noqa: E402
from sender.config.simulator_dir import from_simulator_dir  # noqa: E402
from sender.dispatch.job import Job, Prepared  # noqa: E402
from sender.providers.payload import Message  # noqa: E402
from sender.service import Sender  # noqa: E402
from sender.storage.outbox import DeliveryRow, NotificationRow  # noqa: E402
from simulator.testing.handle import apns_credentials, simulator_process  # noqa: E402


def control(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read() or b"null")


def mint(base: str, provider: str, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < count:
        n = min(1000, count - len(out))
        out += control(base, "POST", "/_sim/devices", {"provider": provider, "count": n})["devices"]
    return out


def delivered_total(base: str) -> int:
    return int(control(base, "GET", "/_sim/stats")["deliveries"])


SIM_PID: int | None = None  # the simulator process, for its CPU time


def _sim_cpu() -> float:
    """CPU seconds the simulator process has used (0 where /proc is not available)."""
    if SIM_PID is None:
        return 0.0
    try:
        with open(f"/proc/{SIM_PID}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Span:
    """Wall time, this process's CPU and the simulator's CPU over the timed section."""

    def __init__(self) -> None:
        self.wall = self.cpu = self.sim_cpu = 0.0

    def start(self) -> None:
        self._t = (time.perf_counter(), time.process_time(), _sim_cpu())

    def stop(self) -> None:
        wall, cpu, sim = self._t
        self.wall = time.perf_counter() - wall
        self.cpu = time.process_time() - cpu
        self.sim_cpu = _sim_cpu() - sim


Result = tuple[Span, int]


# -- ours -------------------------------------------------------------------------


async def prepare(sender: Sender, req: NotificationRequest) -> Job:
    """What ``Sender.accept`` does before dispatching: persist, and build the job."""
    now = time.time()
    nid = uuid.uuid4().hex
    (target,) = req.tokens
    row = DeliveryRow(
        sender.storage.next_delivery_id(),
        nid,
        target.provider,
        target.token,
        target.subscription,
        str(uuid.uuid4()),
    )
    deadline = now + sender.config.deadline
    await sender.storage.accept(
        [(NotificationRow(nid, now, req.message.to_json(), deadline, None, 1), [row])]
    )
    assert sender.dispatcher is not None
    return Job(row, Prepared(nid, req.message, now, deadline), sender.dispatcher.retry)


async def run_ours(
    state: Path,
    provider: str,
    devices: list[dict[str, Any]],
    concurrency: int,
    tag: str,
    full_path: bool = False,
) -> Result:
    db = Path(tempfile.mkdtemp(prefix="pushsim-bench-")) / "sender.db"
    config = from_simulator_dir(state, db)
    config = replace(
        config,
        limits={
            p: ProviderLimits(concurrency=concurrency, max_connections=1)
            for p in ("apns", "fcm", "webpush")
        },
    )
    sender = Sender(config)
    await sender.start()
    try:

        def request(i: int, d: dict[str, Any]) -> NotificationRequest:
            if provider == "webpush":
                target = TokenTarget("webpush", d["subscription"]["endpoint"], d["subscription"])
            else:
                target = TokenTarget(provider, d["token"])
            return NotificationRequest(
                Message("Bench", "hello", {"correlation_id": f"{tag}-{i}"}), tokens=(target,)
            )

        # Warm up: connections, provider token, OAuth token.
        await sender.accept(request(0, devices[0]))
        assert sender.dispatcher is not None
        await sender.dispatcher.drain(30)
        ok_before = sender.metrics.delivered.labels(provider)._value.get()
        reqs = [request(i, d) for i, d in enumerate(devices[1:], start=1)]
        span = Span()
        if not full_path:
            # The dispatcher and provider clients alone: the notifications are made durable
            # first (untimed), then their deliveries are dispatched (timed), attempts and
            # outcomes still recorded in the outbox as in production.
            jobs = await asyncio.gather(*(prepare(sender, r) for r in reqs))
            span.start()
            for job in jobs:
                sender.dispatcher.submit(job)
        else:
            span.start()
            await asyncio.gather(*(sender.accept(r) for r in reqs))
        await sender.dispatcher.drain(300)
        span.stop()
        ok = int(sender.metrics.delivered.labels(provider)._value.get() - ok_before)
    finally:
        await sender.stop()
    return span, ok


# -- peers ------------------------------------------------------------------------


async def pool_run(n: int, concurrency: int, send: Any) -> Result:
    """Warm up with ``send(0)``, then time sends 1..n-1 over ``concurrency`` workers."""
    await send(0)
    span = Span()
    span.start()
    ok = 0
    it = iter(range(1, n))

    async def worker() -> None:
        nonlocal ok
        for i in it:
            if await send(i):
                ok += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    span.stop()
    return span, ok


async def run_aioapns(
    state: Path,
    endpoints: dict[str, str],
    devices: list[dict[str, Any]],
    concurrency: int,
    tag: str,
) -> Result:
    from aioapns import APNs
    from aioapns import NotificationRequest as ApnsRequest
    from aioapns.connection import APNsProductionClientProtocol

    meta, key = apns_credentials(state)
    client = APNs(
        key=key,
        key_id=meta["key_id"],
        team_id=meta["team_id"],
        topic=meta["bundle_id"],
        use_sandbox=False,
        ssl_context=ssl.create_default_context(cafile=endpoints["ca_file"]),
        # aioapns opens up to 1000 streams on a fresh connection before the peer's SETTINGS
        # (APNs allows 1 until a valid token): one connection, warmed up first, keeps it
        # within the rules. The sender core gets the same single connection.
        max_connections=1,
    )
    parts = urlsplit(endpoints["apns"])
    client.pool.protocol_class = type(
        "SimProtocol",
        (APNsProductionClientProtocol,),
        {"APNS_SERVER": parts.hostname, "APNS_PORT": parts.port},
    )

    async def send(i: int) -> bool:
        d = devices[i]
        resp = await client.send_notification(
            ApnsRequest(
                device_token=d["token"],
                message={
                    "aps": {"alert": {"title": "Bench", "body": "hello"}},
                    "correlation_id": f"{tag}-{i}",
                },
            )
        )
        return bool(resp.is_successful)

    return await pool_run(len(devices), concurrency, send)


async def run_firebase_admin(
    state: Path,
    endpoints: dict[str, str],
    devices: list[dict[str, Any]],
    concurrency: int,
    tag: str,
) -> Result:
    import firebase_admin
    from firebase_admin import credentials, messaging

    from simulator.testing.fcm import point_firebase_admin

    os.environ["REQUESTS_CA_BUNDLE"] = endpoints["ca_file"]
    os.environ["SSL_CERT_FILE"] = endpoints["ca_file"]
    cred = credentials.Certificate(str(state / "fcm" / "service-account.json"))
    app = firebase_admin.initialize_app(cred, name=f"bench-{tag}")
    point_firebase_admin(app, state / "endpoints.json")

    def message(i: int) -> Any:
        return messaging.Message(
            token=devices[i]["token"],
            notification=messaging.Notification(title="Bench", body="hello"),
            data={"correlation_id": f"{tag}-{i}"},
        )

    try:
        await messaging.send_each_async([message(0)], app=app)
        span = Span()
        span.start()
        ok = 0
        batch = min(concurrency, 500)
        for lo in range(1, len(devices), batch):
            resp = await messaging.send_each_async(
                [message(i) for i in range(lo, min(lo + batch, len(devices)))], app=app
            )
            ok += resp.success_count
        span.stop()
    finally:
        # delete_app closes its async client with asyncio.run(): not from inside a loop.
        pass
    return span, ok


async def run_pywebpush(
    state: Path,
    endpoints: dict[str, str],
    devices: list[dict[str, Any]],
    concurrency: int,
    tag: str,
) -> Result:
    import aiohttp
    from py_vapid import Vapid02
    from pywebpush import webpush_async

    vapid = json.loads((state / "webpush" / "vapid.json").read_text())
    signer = Vapid02.from_pem(vapid["private_key"].encode())
    subject = vapid.get("subject", "mailto:ops@example.com")
    # pywebpush signs a VAPID JWT per call when given the key; its best configuration signs
    # once per push service (as pushsim's sender does) and passes the header in.
    vapid_headers: dict[str, dict[str, str]] = {}

    def vapid_header(endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        aud = f"{parts.scheme}://{parts.netloc}"
        if aud not in vapid_headers:
            claims = {"sub": subject, "aud": aud, "exp": int(time.time()) + 12 * 3600}
            vapid_headers[aud] = signer.sign(claims)
        return vapid_headers[aud]

    ctx = ssl.create_default_context(cafile=endpoints["ca_file"])
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ctx, limit=concurrency)
    ) as session:

        async def send(i: int) -> bool:
            resp = await webpush_async(
                devices[i]["subscription"],
                json.dumps(
                    {
                        "notification": {"title": "Bench", "body": "hello"},
                        "data": {"correlation_id": f"{tag}-{i}"},
                    }
                ),
                headers=vapid_header(devices[i]["subscription"]["endpoint"]),
                ttl=60,
                aiohttp_session=session,
            )
            return not isinstance(resp, str) and 200 <= resp.status < 300

        return await pool_run(len(devices), concurrency, send)


PEERS = {
    "apns": ("aioapns", run_aioapns),
    "fcm": ("firebase-admin send_each_async", run_firebase_admin),
    "webpush": ("pywebpush webpush_async", run_pywebpush),
}


async def bench(args: argparse.Namespace, state: Path) -> int:
    endpoints = json.loads((state / "endpoints.json").read_text())
    base = endpoints["control"]
    # The simulator must not be the one saying no: no quotas or auth expiry in the way.
    control(base, "POST", "/_sim/faults", {"kind": "auth", "provider": "any", "mode": "relaxed"})
    n = args.n
    print(f"pushsim sender benchmark: N={n} per client, concurrency={args.concurrency}")
    print(
        f"{'provider':9} {'client':34} {'notif/s':>9} {'ok':>6} {'secs':>6}"
        f" {'client us/notif':>15} {'sim us/notif':>12}"
    )
    ratios: dict[str, tuple[float, float, float]] = {}

    def rate(r: Result) -> float:
        return r[1] / r[0].wall if r[0].wall > 0 else 0.0

    for provider in args.providers:
        peer_name, peer = PEERS[provider]
        best: dict[str, Result] = {}
        for rnd in range(args.rounds):
            for who in ("peer", "ours", "full") if rnd % 2 == 0 else ("full", "ours", "peer"):
                devices = mint(base, provider, n + 1)
                tag = f"{provider}-{who}-{rnd}"
                if who == "peer":
                    res = await peer(state, endpoints, devices, args.concurrency, tag)
                else:
                    res = await run_ours(
                        state, provider, devices, args.concurrency, tag, full_path=who == "full"
                    )
                if who not in best or rate(res) > rate(best[who]):
                    best[who] = res
        CORE_RATE[provider] = rate(best["ours"])
        for who, name in (
            ("peer", peer_name),
            ("ours", "pushsim sender core"),
            ("full", "  (core incl. durable accept)"),
        ):
            span, ok = best[who]
            per = 1e6 / max(ok, 1)
            print(
                f"{provider:9} {name:34} {rate(best[who]):9.0f} {ok:6d} {span.wall:6.2f}"
                f" {span.cpu * per:15.0f} {span.sim_cpu * per:12.0f}"
            )
        theirs = rate(best["peer"])
        ratios[provider] = (
            rate(best["ours"]) / theirs if theirs else float("inf"),
            rate(best["full"]) / theirs if theirs else float("inf"),
            best["peer"][0].cpu / best["peer"][1] / (best["ours"][0].cpu / best["ours"][1])
            if best["ours"][0].cpu > 0 and best["peer"][1] and best["ours"][1]
            else float("nan"),
        )
        if best["ours"][1] < n or best["peer"][1] < n or best["full"][1] < n:
            print(
                f"  note: not every send succeeded (ours {best['ours'][1]},"
                f" incl. accept {best['full'][1]}, peer {best['peer'][1]} of {n})"
            )
    print()
    for provider, (ratio, full, cpu) in ratios.items():
        print(
            f"ratio {provider:8} ours / {PEERS[provider][0]}: {ratio:.2f}x"
            f" (incl. durable accept {full:.2f}x; client CPU per notification {cpu:.2f}x less)"
        )
    return 0


CORE_RATE: dict[str, float] = {}  # provider -> the core's direct notifications per second


def main() -> int:
    import logging

    logging.getLogger("aioapns").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-n", type=int, default=2000, help="notifications per client (default 2000)"
    )
    parser.add_argument(
        "-c", "--concurrency", type=int, default=100, help="in-flight sends (default 100)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternating rounds; best of each (default 1)"
    )
    parser.add_argument(
        "--providers",
        type=lambda s: [p.strip() for p in s.split(",") if p.strip()],
        default=["apns", "fcm", "webpush"],
    )
    parser.add_argument(
        "--batch", type=int, default=100, help="notifications per batch API call (default 100)"
    )
    parser.add_argument("--no-api", action="store_true", help="skip the API path")
    parser.add_argument(
        "--profile", action="store_true", help="profile the API path (SQLite) and print it"
    )
    args = parser.parse_args()
    for p in args.providers:
        if p not in PEERS:
            parser.error(f"--providers: unknown provider {p!r}")
    n = args.n
    state = Path(tempfile.mkdtemp(prefix="pushsim-bench-sim-"))
    global SIM_PID
    with simulator_process(state, "--seed", "7") as (proc, _endpoints):
        SIM_PID = proc.pid
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        code = asyncio.run(bench(args, state))
        if code == 0 and not args.no_api:
            from benchmarks.sender_api import api_section

            base = json.loads((state / "endpoints.json").read_text())["control"]
            api_section(
                state,
                base,
                lambda k: mint(base, "apns", k),
                n,
                args.batch,
                CORE_RATE.get("apns", 0.0),
                args.profile,
            )
        return code


if __name__ == "__main__":
    sys.exit(main())
