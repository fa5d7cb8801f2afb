"""Web Push path benchmark: h2load against the simulator, as a ratio to a bare h2 baseline.

What is measured (same run, same machine, so the ratio is what matters):

- ``baseline``: the simulator's own server loop (:class:`simulator.server.protocol.Listener`) with
  a handler that answers every POST with 201 and nothing else: the cost of h2 alone;
- ``webpush (ECDH cached)``: ``POST /wp/<id>`` with a VAPID-signed request and a 200-byte
  payload encrypted (aes128gcm) to that subscription, answered 201 after VAPID check,
  decryption and delivery to the inbox. h2load sends one fixed body for every request, so
  the sender's ephemeral key repeats and the simulator's ECDH cache turns every request
  after the first into HMACs and one AES-GCM open;
- ``webpush (ECDH every message)``: the same with the cache switched off through the
  control API: what a real sender costs, since RFC 8291 senders use a fresh ephemeral key
  per message.

h2load sends a fixed body per run, so each run targets one subscription; the body is
encrypted to it beforehand (``--subscriptions N`` splits the request count over N runs,
each with its own subscription and body).

    .venv/bin/python benchmarks/webpush_bench.py [--requests 30000] [--clients 4] [--streams 100]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BASELINE_SERVER = r"""
import asyncio, sys
from simulator.server.listener import Listener, ListenerOptions
from simulator.wire import Respond
try:
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
except ImportError:
    pass
CREATED = Respond(201, (("location", "http://127.0.0.1/m/x"), ("ttl", "60")))
class Bare:
    def handle(self, request):
        return CREATED
async def main():
    listener = Listener("baseline", Bare(), None, ListenerOptions())
    await listener.start("127.0.0.1", 0)
    print(listener.url, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def control(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def h2load(uri: str, body: Path, headers: list[str], n: int, c: int, m: int) -> float:
    args = ["h2load", "-n", str(n), "-c", str(c), "-m", str(m), "-d", str(body)]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run([*args, uri], capture_output=True, text=True, timeout=600).stdout
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if rate is None or codes is None:
        raise RuntimeError(f"unexpected h2load output:\n{out}")
    if int(codes.group(1)) != n:
        raise RuntimeError(f"not every request succeeded: {codes.group(0)}\n{out}")
    return float(rate.group(1))


def prepare(state: Path, control_url: str, count: int, work: Path) -> list[tuple[str, Path, str]]:
    """Mint ``count`` bound subscriptions; encrypt a 200-byte payload and sign VAPID for each."""
    import http_ece
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    vapid = json.loads((state / "webpush" / "vapid.json").read_text())
    endpoints = json.loads((state / "endpoints.json").read_text())
    devices = control(
        control_url,
        "POST",
        "/_sim/devices",
        {"provider": "webpush", "count": count, "application_server_key": vapid["public_key"]},
    )["devices"]
    claims = {
        "aud": endpoints["webpush"],
        "exp": int(time.time()) + 6 * 3600,
        "sub": vapid["subject"],
    }
    token = jwt.encode(claims, vapid["private_key"], algorithm="ES256")
    auth = f"authorization: vapid t={token}, k={vapid['public_key']}"
    payload = json.dumps({"title": "bench", "body": "x" * 160}).encode()[:200].ljust(200, b" ")
    out = []
    for i, dev in enumerate(devices):
        keys = dev["subscription"]["keys"]
        body = http_ece.encrypt(
            payload,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=b64d(keys["p256dh"]),
            auth_secret=b64d(keys["auth"]),
            version="aes128gcm",
        )
        path = work / f"body-{i}.bin"
        path.write_bytes(body)
        out.append((dev["subscription"]["endpoint"], path, auth))
    return out


# -- the path for benchmarks/simulator_bench.py (``--plugin webpush_bench --paths webpush``) --


def _bench_module() -> Any:
    """simulator_bench as it is running (it is usually ``__main__``), to register into."""
    main = sys.modules.get("__main__")
    if main is not None and hasattr(main, "register_path"):
        return main
    import simulator_bench

    return simulator_bench


def webpush_path(ctx: Any) -> Any:
    """Web Push success path: VAPID-signed, a 200-byte payload encrypted to the subscription.

    h2load sends one fixed body per run, and a body decrypts only for the subscription it
    was encrypted to, so this path targets one subscription (the ECDH result for the
    replayed ephemeral key is cached after the first request; ``webpush_bench.py`` run
    on its own also measures ECDH on every message).
    """
    bench = _bench_module()
    work = Path(tempfile.mkdtemp(prefix="pushsim-wp-path-"))
    [(uri, body, auth)] = prepare(ctx.state_dir, ctx.endpoints["control"], 1, work)
    path = uri[len(ctx.endpoints["webpush"]) :]
    return bench.BenchTarget(
        listener="webpush",
        paths=[path],
        headers=["ttl: 60", "content-encoding: aes128gcm", auth],
        body=body.read_bytes(),
    )


if __name__ != "__main__":
    try:
        _bench_module().register_path("webpush")(webpush_path)
    except ImportError:  # imported outside the benchmark (e.g. by a test)
        pass


def run(args: argparse.Namespace) -> dict[str, Any]:
    from simulator.testing.handle import simulator_process

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    work = Path(tempfile.mkdtemp(prefix="pushsim-wp-bench-"))
    state = work / "state"
    base = subprocess.Popen(
        [sys.executable, "-c", BASELINE_SERVER], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        with simulator_process(state, "--no-tls", timeout=60) as (_, endpoints):
            assert base.stdout is not None
            base_url = base.stdout.readline().strip()
            ctl = endpoints["control"]
            targets = prepare(state, ctl, args.subscriptions, work)
            per_run = max(1, args.requests // len(targets))
            hdrs = ["ttl: 60", "content-encoding: aes128gcm"]

            def webpush_rate() -> float:
                total_time = 0.0
                for uri, body, auth in targets:
                    total_time += per_run / h2load(
                        uri, body, [*hdrs, auth], per_run, args.clients, args.streams
                    )
                return float(per_run * len(targets) / total_time)

            results: dict[str, Any] = {}
            results["baseline"] = h2load(
                base_url + "/wp/x", targets[0][1], hdrs, args.requests, args.clients, args.streams
            )
            control(ctl, "PATCH", "/_sim/webpush/config", {"ecdh_cache": True})
            results["webpush_ecdh_cached"] = webpush_rate()
            control(ctl, "PATCH", "/_sim/webpush/config", {"ecdh_cache": False})
            results["webpush_ecdh_every_message"] = webpush_rate()
            results["cache"] = control(ctl, "GET", "/_sim/webpush/cache")
            delivered = control(ctl, "GET", "/_sim/stats")["providers"]["webpush"].get(
                "delivered", 0
            )
            results["delivered"] = delivered
            return results
    finally:
        base.terminate()
        try:
            base.wait(timeout=10)
        except subprocess.TimeoutExpired:
            base.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--subscriptions", type=int, default=3)
    args = parser.parse_args(argv)
    r = run(args)
    base = r["baseline"]
    print(f"bare h2 baseline (201, no work)      {base:>9.0f} req/s   1.00")
    for key, label in (
        ("webpush_ecdh_cached", "web push, ECDH cached (replayed body)"),
        ("webpush_ecdh_every_message", "web push, ECDH on every message"),
    ):
        print(f"{label:<37}{r[key]:>9.0f} req/s   {r[key] / base:.2f}")
    print(f"delivered {r['delivered']}; caches {json.dumps(r['cache'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
