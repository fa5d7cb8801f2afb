"""How fast the simulator answers, as a ratio against a bare h2 server measured in the same run.

Run::

    python3 tasks.py bench [--paths apns,fcm,webpush] [--workers N[,N...]] [--rounds N]
        [--requests N] [--devices N] [--no-tls] [--json]

(``tasks.py bench`` runs ``.venv/bin/python benchmarks/simulator_bench.py`` with the same
arguments.)

One run drives h2load (``-c4 -m100``) first at a bare h2 server (the baseline: a minimal
``asyncio.Protocol`` + h2 on uvloop answering 200, defined in this file, in the same TLS
or h2c mode as the target), then at ``pushsim simulator`` on each path's success path
with full validation, and prints req/s for each and the ratio simulator/baseline.
Figures on a shared machine are noisy; the ratio, measured minutes apart, is what to
compare.

``--workers 1,2`` runs the simulator once per process count and adds, per path, the
requests served per CPU-second of the simulator's processes (the primary and its
workers, from ``/proc``: steadier than req/s when the load generator shares the cores),
the efficiency of each count against the first (requests per CPU-second, N processes
over one), and the share of requests the primary read (the kernel spreads h2load's
connections over the processes). ``--rounds R`` measures each count R times,
interleaved, and prints medians.

Adding a provider path (the extension point)
--------------------------------------------
A path is a function ``(ctx: BenchContext) -> BenchTarget`` registered under a name::

    from benchmarks.simulator_bench import BenchContext, BenchTarget, register_path

    @register_path("fcm")
    def fcm_path(ctx: BenchContext) -> BenchTarget:
        devices = ctx.mint("fcm", ctx.devices)
        ...
        return BenchTarget(
            listener="fcm", paths=[...], headers=["authorization: Bearer ..."], body=b"..."
        )

``BenchContext`` gives the simulator's endpoints, its state directory, ``mint`` (the
control API's ``POST /_sim/devices``) and ``control`` (any control call). ``paths`` are
request paths on the listener named by ``listener`` (a key of ``endpoints.json``);
h2load cycles through them (``-i``), so many distinct device tokens are exercised.
Every response must be 2xx or the run fails. Register a path in this file (in
``PATHS``) or in a module imported with ``--plugin module``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import multiprocessing
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# -- the extension point -----------------------------------------------------------------


@dataclass
class BenchContext:
    endpoints: dict[str, str]
    state_dir: Path
    devices: int

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoints["control"] + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"null")

    def mint(self, provider: str, count: int, **extra: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < count:
            n = min(10_000, count - len(out))
            out += self.control(
                "POST", "/_sim/devices", {"provider": provider, "count": n, **extra}
            )["devices"]
        return out


@dataclass
class BenchTarget:
    listener: str  # key of endpoints.json
    paths: list[str]
    headers: list[str] = field(default_factory=list)
    body: bytes = b""


PathBuilder = Callable[[BenchContext], BenchTarget]
PATHS: dict[str, PathBuilder] = {}


def register_path(name: str) -> Callable[[PathBuilder], PathBuilder]:
    def deco(fn: PathBuilder) -> PathBuilder:
        PATHS[name] = fn
        return fn

    return deco


@register_path("apns")
def apns_path(ctx: BenchContext) -> BenchTarget:
    """APNs success path: provider token (JWT) checked, every header rule, many device tokens."""
    from simulator.testing.handle import apns_credentials, apns_provider_token

    meta, _ = apns_credentials(ctx.state_dir)
    token = apns_provider_token(ctx.state_dir)
    devices = ctx.mint("apns", ctx.devices)
    # h2load opens its 100 streams before reading SETTINGS; APNs starts connections at 1.
    ctx.control("PATCH", "/_sim/apns/config", {"initial_streams": 1000})
    # Plenty of headroom on the per-device rate: h2load cycles through the tokens.
    return BenchTarget(
        listener="apns",
        paths=[f"/3/device/{d['token']}" for d in devices],
        headers=[
            f"authorization: bearer {token}",
            f"apns-topic: {meta['bundle_id']}",
            "apns-push-type: alert",
            "apns-priority: 10",
            "apns-expiration: 0",
        ],
        body=b'{"aps":{"alert":{"title":"Hello","body":"pushsim benchmark"},"badge":1},'
        b'"correlation_id":"bench"}',
    )


# -- the baseline: a bare h2 server -----------------------------------------------------------


def _baseline_server(port_out: Any, tls_files: tuple[str, str] | None) -> None:
    """A minimal asyncio.Protocol + h2 answering 200 to everything (runs in a child process)."""
    import h2.config
    import h2.connection
    import h2.events
    import uvloop

    config = h2.config.H2Configuration(
        client_side=False,
        header_encoding=None,
        validate_inbound_headers=False,
        normalize_inbound_headers=False,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
    )
    response = [(b":status", b"200"), (b"apns-id", b"6f1b6f3e-8a2f-4c1e-9c55-1d2f3a4b5c6d")]

    class Bare(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.c = h2.connection.H2Connection(config=config)
            self.c.local_settings.max_concurrent_streams = 1000
            self.c.initiate_connection()
            self.c.increment_flow_control_window(1 << 24)
            transport.write(self.c.data_to_send())

        def data_received(self, data: bytes) -> None:
            c = self.c
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.DataReceived):
                    if ev.flow_controlled_length:
                        c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.stream_ended is not None:
                        c.send_headers(ev.stream_id, response, end_stream=True)
                elif isinstance(ev, h2.events.RequestReceived) and ev.stream_ended is not None:
                    c.send_headers(ev.stream_id, response, end_stream=True)
            out = c.data_to_send()
            if out:
                self.t.write(out)

    async def main() -> None:
        ctx = None
        if tls_files:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls_files)
            ctx.set_alpn_protocols(["h2"])
        server = await asyncio.get_running_loop().create_server(
            Bare, "127.0.0.1", 0, ssl=ctx, backlog=1024
        )
        port_out.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.install()
    asyncio.run(main())


# -- driving h2load ------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    rps: float
    succeeded: int
    total: int
    raw: str
    cpu: float = 0.0  # CPU seconds of the simulator's processes during the run
    primary_share: float = 1.0  # of the requests, those the primary process read


def run_h2load(
    name: str, base_url: str, target: BenchTarget, requests: int, workdir: Path
) -> Result:
    uri_file = workdir / f"{name}.uris"
    uri_file.write_text("".join(f"{base_url}{p}\n" for p in target.paths))
    args = ["h2load", "-c4", "-m100", "-n", str(requests), "-i", str(uri_file)]
    if target.body:
        body_file = workdir / f"{name}.body"
        body_file.write_bytes(target.body)
        args += ["-d", str(body_file)]
    for h in target.headers:
        args += ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if not m or not done or not codes:
        raise RuntimeError(f"h2load output not understood:\n{out}")
    return Result(name, float(m.group(1)), int(codes.group(1)), int(done.group(1)), out)


def baseline(
    requests: int, tls_files: tuple[str, str] | None, workdir: Path, target: BenchTarget
) -> Result:
    mp = multiprocessing.get_context("spawn")
    q = mp.Queue()
    proc = mp.Process(target=_baseline_server, args=(q, tls_files), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=30)
        scheme = "https" if tls_files else "http"
        run_h2load("warmup", f"{scheme}://127.0.0.1:{port}", target, min(requests, 5000), workdir)
        return run_h2load("baseline", f"{scheme}://127.0.0.1:{port}", target, requests, workdir)
    finally:
        proc.terminate()
        proc.join(5)


# The FCM and Web Push paths live beside this file and register themselves on import.
DEFAULT_PLUGINS = ("benchmarks.fcm_bench", "benchmarks.webpush_bench")


# -- CPU of the simulator's processes ---------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")
SETTLE = 0.3  # seconds for the workers' counters to reach the primary (every 50 ms)


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the worker processes of ``--workers N``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the simulator (with its workers) has used so far."""
    total = 0
    for p in _process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICK


# -- one simulator, every path ---------------------------------------------------------------------


def _measure(
    names: list[str], workers: int, args: argparse.Namespace, workdir: Path, with_baseline: bool
) -> dict[str, Any]:
    """Start ``pushsim simulator --workers N``, drive each path, and read its CPU time (and
    first, ``with_baseline``, the bare h2 server's figure in the same TLS mode)."""
    from simulator.testing.handle import simulator_process

    state = workdir / f"state-{workers}"
    sim_args = ["--seed", "7"]
    if args.no_tls:
        sim_args.append("--no-tls")
    if workers > 1:
        sim_args += ["--workers", str(workers)]
    out: dict[str, Any] = {}
    with simulator_process(state, *sim_args, stderr=subprocess.PIPE, timeout=60) as (
        proc,
        endpoints,
    ):
        ctx = BenchContext(endpoints, state, args.devices)
        targets = {n: PATHS[n](ctx) for n in names}
        if with_baseline:
            tls_files = (
                None if args.no_tls else (str(state / "server.pem"), str(state / "server.key"))
            )
            out["baseline"] = baseline(args.requests, tls_files, workdir, targets[names[0]])
        for n, target in targets.items():
            url = endpoints[target.listener]
            run_h2load(f"{n}-warmup", url, target, min(args.requests, 5000), workdir)
            time.sleep(SETTLE)  # the workers' counters of the warm-up reach the primary
            served = ctx.control("GET", "/_sim/stats").get("workers", {})
            cpu = cpu_seconds(proc.pid)
            res = run_h2load(n, url, target, args.requests, workdir)
            res.cpu = cpu_seconds(proc.pid) - cpu
            time.sleep(SETTLE)
            after = ctx.control("GET", "/_sim/stats").get("workers", {})
            on_workers = sum(
                c.get(target.listener, 0) - served.get(w, {}).get(target.listener, 0)
                for w, c in after.items()
            )
            res.primary_share = 1.0 - on_workers / max(1, res.total)
            out[n] = res
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--paths",
        default="apns,fcm,webpush",
        help="comma-separated paths to measure (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        default="1",
        help="simulator processes, or a comma-separated list to compare (e.g. 1,2; default 1)",
    )
    parser.add_argument(
        "--requests", type=int, default=100_000, help="requests per h2load run (default 100000)"
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=10_000,
        help="distinct device tokens per path (default 10000)",
    )
    parser.add_argument(
        "--no-tls", action="store_true", help="h2c for both the baseline and the simulator"
    )
    parser.add_argument(
        "--plugin", action="append", default=[], help="module registering more paths"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each process count this many times, interleaved; medians (default 1)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    for mod in [*DEFAULT_PLUGINS, *args.plugin]:
        importlib.import_module(mod)
    names = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = [n for n in names if n not in PATHS]
    if unknown:
        print(
            f"unknown path(s) {', '.join(unknown)}; registered: {', '.join(sorted(PATHS))}",
            file=sys.stderr,
        )
        return 2
    try:
        counts = [int(w) for w in args.workers.split(",")]
    except ValueError:
        counts = []
    if args.rounds < 1:
        print(f"--rounds: expected 1 or more, got {args.rounds}", file=sys.stderr)
        return 2
    if not counts or not all(1 <= w <= 64 for w in counts):
        print(f"--workers: expected numbers 1-64, got {args.workers!r}", file=sys.stderr)
        return 2
    if shutil.which("h2load") is None:
        print("h2load is required (apt-get install nghttp2-client)", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="pushsim-bench-"))
    try:
        runs: dict[int, list[dict[str, Any]]] = {w: [] for w in counts}
        for r in range(args.rounds):  # rounds interleave the process counts
            for i, workers in enumerate(counts):
                first = r == 0 and i == 0
                runs[workers].append(_measure(names, workers, args, workdir, first))
        return _report(names, counts, runs, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _per_cpu(res: Result) -> float:
    return res.total / res.cpu if res.cpu > 0 else float("nan")


def _report(
    names: list[str],
    counts: list[int],
    runs: dict[int, list[dict[str, Any]]],
    args: argparse.Namespace,
) -> int:
    """Print each path's figures per process count (medians over the rounds)."""
    base: Result = runs[counts[0]][0]["baseline"]
    print(f"baseline (bare h2, 1 process)       {base.rps:>10,.0f} req/s")
    report: dict[str, Any] = {
        "workers": counts,
        "tls": not args.no_tls,
        "requests": args.requests,
        "rounds": args.rounds,
        "baseline_rps": base.rps,
    }
    for n in names:
        first_per_cpu = 0.0
        for workers in counts:
            results = [run[n] for run in runs[workers]]
            bad = next((r for r in results if r.succeeded != r.total), None)
            if bad is not None:
                print(
                    f"{n}: only {bad.succeeded} of {bad.total} answered 2xx\n{bad.raw}",
                    file=sys.stderr,
                )
                return 1
            rps = statistics.median(r.rps for r in results)
            per_cpu = statistics.median(_per_cpu(r) for r in results)
            share = statistics.median(r.primary_share for r in results)
            first_per_cpu = first_per_cpu or per_cpu
            label = f"simulator {n} ({workers} worker{'s' if workers > 1 else ''})"
            line = (
                f"{label:<36} {rps:>10,.0f} req/s   ratio {rps / base.rps:.2f}   "
                f"{per_cpu:>8,.0f} req/CPU-s"
            )
            if workers != counts[0]:
                line += f"   efficiency {per_cpu / first_per_cpu:.2f}x"
            if workers > 1:
                line += f"   primary's share {share:.0%}"
            print(line)
            report.setdefault(n, {})[str(workers)] = {
                "rps": rps,
                "ratio": rps / base.rps,
                "per_cpu_s": per_cpu,
                "efficiency": per_cpu / first_per_cpu,
                "primary_share": share,
            }
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
