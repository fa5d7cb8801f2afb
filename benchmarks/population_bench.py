"""What a large device population costs the simulator: memory per device, mint rate, and
whether its size slows the hot path.

Run::

    .venv/bin/python benchmarks/population_bench.py [--quick] [--json]

In one run, each against a fresh ``pushsim simulator`` process:

- **memory and mint rate**: 1,000,000 APNs, 1,000,000 FCM and 200,000 Web Push devices
  minted through the control API as a sender would get them (``POST /_sim/devices``, then
  every page through ``next``: the answers' bytes received, tokens counted); the simulator's
  RSS growth over its own RSS before the mint (the baseline, measured in the same process)
  divided by the devices; and 10,000,000 APNs devices declared (``POST /_sim/population``).
  Targets: at most 100 bytes a device for APNs and FCM (10 million in under 1 GB), 300 for
  Web Push; 1,000,000 minted in at most 5 s (APNs, FCM: a Web Push subscription's key pair
  costs a P-256 scalar multiplication when it is first read, so its rate is shown alone).
- **hot path**: h2load (``-c4 -m100``) on the APNs success path against a simulator with 100
  devices (the baseline) and one with 10,000,000 declared, sending to 100 tokens spread over
  the population; rounds alternate between the two (A B, B A, ...), and the ratio of the
  medians is printed in req/s and in requests per CPU-second of the simulator (the steadier
  figure on shared cores, where req/s moves with whatever else runs). Target: at least 0.95.

``--quick`` divides the populations by 10 (the targets still apply per device).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.simulator_bench import (  # noqa: E402  (after the path fix above)
    BenchContext,
    BenchTarget,
    apns_path,
    cpu_seconds,
    run_h2load,
)
from simulator.testing.handle import simulator_process  # noqa: E402

TARGET_BYTES = {"apns": 100, "fcm": 100, "webpush": 300}
TARGET_MINT_S = 5.0  # for 1,000,000 devices
TARGET_RATIO = 0.95


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def control(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read() or b"null")


def mint_all(base: str, provider: str, count: int) -> int:
    """Mint ``count`` devices and receive every page (its bytes: what a sender's JSON parser
    then does is the sender's time); how many tokens came back."""
    body = json.dumps({"provider": provider, "count": count}).encode()
    req = urllib.request.Request(base + "/_sim/devices", data=body, method="POST")
    req.add_header("content-type", "application/json")
    seen = 0
    while True:
        with urllib.request.urlopen(req, timeout=600) as resp:
            raw: bytes = resp.read()
        seen += raw.count(b'"token":')
        more: str | None = json.loads(raw[raw.rindex(b'"next":') + 7 : -1])
        if not more:
            return seen
        req = urllib.request.Request(base + more)


def memory(provider: str, count: int, workdir: Path, declare: bool = False) -> dict[str, Any]:
    state = workdir / f"mem-{provider}-{count}-{declare}"
    with simulator_process(
        state, "--seed", "7", "--no-tls", stderr=subprocess.PIPE, timeout=60
    ) as (proc, endpoints):
        base = endpoints["control"]
        control(base, "POST", "/_sim/devices", {"provider": provider, "count": 1})  # warm
        time.sleep(0.3)
        before = rss(proc.pid)
        started = time.perf_counter()
        if declare:
            control(base, "POST", "/_sim/population", {provider: count})
            got = control(base, "GET", "/_sim/population")["devices"][provider]["total"] - 1
        else:
            got = mint_all(base, provider, count)
        seconds = time.perf_counter() - started
        time.sleep(0.3)
        after = rss(proc.pid)
    if got != count:
        raise RuntimeError(f"{provider}: asked for {count}, got {got}")
    return {
        "provider": provider,
        "how": "declared" if declare else "minted",
        "devices": count,
        "seconds": seconds,
        "per_s": count / seconds,
        "rss_before_mb": before / 2**20,
        "rss_growth_mb": (after - before) / 2**20,
        "bytes_per_device": (after - before) / count,
        "target_bytes": TARGET_BYTES[provider],
    }


def _spread_target(ctx: BenchContext, population: int, rng: random.Random) -> BenchTarget:
    """The APNs success path on 100 devices spread over the population's numbers."""
    target = apns_path(ctx)  # mints ctx.devices and raises the stream limit
    if population <= ctx.devices:
        return target
    ids = rng.sample(range(1, population + 1), 100)
    tokens = [ctx.control("GET", f"/_sim/devices/apns-{n}")["token"] for n in ids]
    return dataclasses.replace(target, paths=[f"/3/device/{t}" for t in tokens])


def hot_path(declared: int, requests: int, rounds: int, workdir: Path) -> dict[str, Any]:
    rng = random.Random(7)
    figures: dict[str, dict[str, list[float]]] = {}
    with (
        simulator_process(workdir / "small", "--seed", "7", timeout=60) as (p_small, e_small),
        simulator_process(workdir / "large", "--seed", "7", timeout=60) as (p_large, e_large),
    ):
        control(e_large["control"], "POST", "/_sim/population", {"apns": declared})
        sims = {
            "100 devices": (p_small.pid, e_small, 100),
            f"{declared:,} declared": (p_large.pid, e_large, declared + 100),
        }
        targets = {}
        for name, (_, endpoints, size) in sims.items():
            ctx = BenchContext(
                endpoints, Path(workdir / ("small" if size == 100 else "large")), 100
            )
            targets[name] = _spread_target(ctx, size, rng)
            run_h2load(f"warm-{size}", endpoints["apns"], targets[name], 5000, workdir)
        for r in range(rounds):  # A B, B A, ...: a drift in the machine's load hits both
            for name, (pid, endpoints, _size) in list(sims.items())[:: 1 if r % 2 == 0 else -1]:
                cpu = cpu_seconds(pid)
                res = run_h2load("run", endpoints["apns"], targets[name], requests, workdir)
                if res.succeeded != res.total:
                    raise RuntimeError(f"{name}: {res.total - res.succeeded} requests failed")
                used = cpu_seconds(pid) - cpu
                f = figures.setdefault(name, {"rps": [], "per_cpu_s": []})
                f["rps"].append(res.rps)
                f["per_cpu_s"].append(res.total / used if used > 0 else float("nan"))
    small, large = ({k: statistics.median(v) for k, v in f.items()} for f in figures.values())
    return {
        "baseline": small,
        "large": large,
        "declared": declared,
        "ratio_rps": large["rps"] / small["rps"],
        "ratio_per_cpu_s": large["per_cpu_s"] / small["per_cpu_s"],
        "target_ratio": TARGET_RATIO,
    }


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _mint_note(m: dict[str, Any]) -> str:
    if m["how"] == "declared":
        return ""
    if m["provider"] == "webpush":  # a P-256 key pair a subscription: one scalar multiplication
        return "; keys derived a subscription (no mint-time target)"
    per_million = m["seconds"] * 1_000_000 / m["devices"]
    ok = verdict(per_million <= TARGET_MINT_S)
    return f"; 1M in {per_million:.2f} s (<= {TARGET_MINT_S:g} s): {ok}"


def report(mem: list[dict[str, Any]], hot: dict[str, Any], scale: int, load: str) -> str:
    lines = [
        f"machine load average (1, 5, 15 min) before and after: {load}",
        "population: RSS growth over the simulator's own RSS before minting (same process)",
        f"{'provider':<9} {'how':<9} {'devices':>11} {'seconds':>8} {'devices/s':>11} "
        f"{'RSS +MB':>8} {'B/device':>9}  target",
    ]
    for m in mem:
        ok = m["bytes_per_device"] <= m["target_bytes"]
        lines.append(
            f"{m['provider']:<9} {m['how']:<9} {m['devices']:>11,} {m['seconds']:>8.2f} "
            f"{m['per_s']:>11,.0f} {m['rss_growth_mb']:>8.1f} {m['bytes_per_device']:>9.1f}  "
            f"<= {m['target_bytes']} B: {verdict(ok)}{_mint_note(m)}"
        )
    b, lg = hot["baseline"], hot["large"]
    lines += [
        "hot path: APNs success path, h2load -c4 -m100, median of alternating rounds",
        f"  100 devices (baseline): {b['rps']:,.0f} req/s, {b['per_cpu_s']:,.0f} req/CPU-s",
        f"  {hot['declared']:,} declared: {lg['rps']:,.0f} req/s, {lg['per_cpu_s']:,.0f} req/CPU-s",
        f"  ratio large/baseline: {hot['ratio_rps']:.3f} in req/s "
        f"(>= {TARGET_RATIO}: {verdict(hot['ratio_rps'] >= TARGET_RATIO)}), "
        f"{hot['ratio_per_cpu_s']:.3f} in req/CPU-s "
        f"(>= {TARGET_RATIO}: {verdict(hot['ratio_per_cpu_s'] >= TARGET_RATIO)})",
    ]
    if scale > 1:
        lines.append(f"(--quick: populations divided by {scale})")
    return "\n".join(lines)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="populations divided by 10")
    parser.add_argument("--requests", type=int, default=20_000, help="per h2load round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    load = loadavg()
    with tempfile.TemporaryDirectory(prefix="pushsim-population-bench-") as tmp:
        workdir = Path(tmp)
        mem = [
            memory("apns", 1_000_000 // scale, workdir),
            memory("fcm", 1_000_000 // scale, workdir),
            memory("webpush", 200_000 // scale, workdir),
            memory("apns", 10_000_000 // scale, workdir, declare=True),
        ]
        hot = hot_path(10_000_000 // scale, args.requests, args.rounds, workdir)
    print(report(mem, hot, scale, f"{load} / {loadavg()}"))
    if args.json:
        print(json.dumps({"memory": mem, "hot_path": hot}, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:  # h2load missing or failing
        print(f"population_bench: {exc}", file=sys.stderr)
        sys.exit(2)
