"""The sender's API path, for ``sender_bench.py``: ``pushsim sender`` processes driven over
HTTP by an aiohttp client in the benchmark's process, against the benchmark's simulator.

For each store (SQLite; PostgreSQL on a throwaway server, ``pushsim.pgserver``) and each
way in (one notification per ``POST /v1/notifications``, or ``POST /v1/notifications:batch``
of ``--batch`` each), N APNs notifications (each to its own device) are posted and timed
until the simulator has delivered them all: notifications per second end to end, set
against the core's direct figure of the same run, and the sender process's CPU per
notification. Then PostgreSQL with two instances (the batches split between them) against
one, as sender CPU-seconds per 10,000 notifications: on a machine with a core per
instance, two instances deliver ``2 x cpu(1) / cpu(2)`` times what one does.

``--profile`` runs the single and batch API once more on SQLite with the sender under
cProfile (CPU time, the timed section only: this file runs it, switched on and off by
SIGUSR1 / SIGUSR2) and prints where the sender's time goes, by area and by function.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ApiResult:
    label: str
    ok: int
    wall: float
    cpu: float  # sender CPU seconds (all instances)
    accepted_wall: float

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_per_10k(self) -> float:
        return self.cpu / max(self.ok, 1) * 10_000


def proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def sender_processes(
    state: Path, store: list[str], count: int, profile: Path | None = None
) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    """``count`` ``pushsim sender`` processes on ``store`` flags; (process, URL) each."""
    procs: list[tuple[subprocess.Popen[bytes], str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="pushsim-bench-api-"))
    try:
        for i in range(count):
            ready = tmp / f"ready-{i}.json"
            how = [__file__, "--profiled", str(profile)] if profile else ["-m", "pushsim"]
            argv = [sys.executable, *how, "sender", "--simulator", str(state)]
            proc = subprocess.Popen(
                [*argv, *store, "--ready-file", str(ready)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 60
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr and proc.poll() else ""
                    raise RuntimeError(f"pushsim sender did not start: {err[-500:]}")
                time.sleep(0.05)
            procs.append((proc, json.loads(ready.read_text())["url"]))
        yield procs
    finally:
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _delivered(control: str) -> int:
    with urllib.request.urlopen(control + "/_sim/stats", timeout=30) as resp:
        return int(json.loads(resp.read())["deliveries"])


def _body(dev: dict[str, Any], corr: str) -> dict[str, Any]:
    return {
        "to": {"tokens": [{"provider": "apns", "token": dev["token"]}]},
        "notification": {"title": "Bench", "body": "hello"},
        "data": {"correlation_id": corr},
    }


async def drive(
    urls: list[str],
    devices: list[dict[str, Any]],
    batch: int,
    control: str,
    tag: str,
) -> tuple[int, float, float]:
    """Post one notification per device (singly, or ``batch`` per call over the
    ``urls`` in turn); (accepted, seconds until accepted, seconds until delivered)."""
    base = await asyncio.to_thread(_delivered, control)
    bodies = [_body(d, f"{tag}-{i}") for i, d in enumerate(devices)]
    calls: list[tuple[str, str, Any]] = []
    if batch <= 1:
        calls = [(urls[i % len(urls)], "/v1/notifications", b) for i, b in enumerate(bodies)]
    else:
        for k in range(0, len(bodies), batch):
            url = urls[(k // batch) % len(urls)]
            calls.append((url, "/v1/notifications:batch", {"notifications": bodies[k : k + batch]}))
    accepted = 0
    started = time.perf_counter()
    conn = aiohttp.TCPConnector(limit=64 if batch <= 1 else 8)
    async with aiohttp.ClientSession(connector=conn) as session:
        it = iter(calls)

        async def worker() -> None:
            nonlocal accepted
            for url, path, body in it:
                async with session.post(url + path, json=body) as resp:
                    doc = await resp.json()
                    if resp.status == 202:
                        accepted += doc.get("accepted", 1)

        await asyncio.gather(*(worker() for _ in range(64 if batch <= 1 else 4)))
    accepted_at = time.perf_counter() - started
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if await asyncio.to_thread(_delivered, control) - base >= accepted:
            break
        await asyncio.sleep(0.02)
    return accepted, accepted_at, time.perf_counter() - started


def run_api(
    state: Path,
    store: list[str],
    devices: Callable[[int], list[dict[str, Any]]],
    n: int,
    batch: int,
    control: str,
    label: str,
    instances: int = 1,
    profile: Path | None = None,
) -> ApiResult:
    with sender_processes(state, store, instances, profile) as procs:
        urls = [u for _, u in procs]
        asyncio.run(drive(urls, devices(max(2, batch)), batch, control, f"{label}-warm"))
        devs = devices(n)
        cpu0 = sum(proc_cpu(p.pid) for p, _ in procs)
        if profile is not None:
            procs[0][0].send_signal(signal.SIGUSR1)
        ok, accepted_wall, wall = asyncio.run(drive(urls, devs, batch, control, label))
        if profile is not None:
            procs[0][0].send_signal(signal.SIGUSR2)
            for _ in range(100):
                if profile.exists():
                    break
                time.sleep(0.05)
        cpu = sum(proc_cpu(p.pid) for p, _ in procs) - cpu0
    return ApiResult(label, ok, wall, cpu, accepted_wall)


AREAS = (  # where a profiled function's time is counted, first match wins
    ("aiohttp (HTTP server)", ("aiohttp/", "multidict", "yarl")),
    ("JSON", ("json/", "_json")),
    ("API and validation", ("sender/api/", "sender/intake.py", "sender/service.py")),
    ("store (SQLite / PostgreSQL)", ("sender/storage/", "sqlite3", "psycopg")),
    ("dispatch and policy", ("sender/dispatch/", "sender/policy/")),
    ("payloads and provider clients", ("sender/providers/",)),
    ("HTTP/2 client (h2, hpack, TLS)", ("sender/transport/", "/h2/", "/hpack/", "ssl")),
    ("event loop (asyncio)", ("asyncio/", "uvloop")),
    ("metrics", ("prometheus_client",)),
)


def _area(key: tuple[str, int, str]) -> str | None:
    where = f"{key[0]} {key[2]}"
    return next((a for a, keys in AREAS if any(k in where for k in keys)), None)


def print_profile(path: Path, notifications: int, title: str, top: int = 12) -> None:
    """Own time by area; a built-in's (dict.get, len, ...) goes to the areas of its callers."""
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    areas: dict[str, float] = {}
    for key, (_cc, _nc, tt, _ct, callers) in raw.items():
        area = _area(key)
        if area is not None or not callers:
            areas[area or "other"] = areas.get(area or "other", 0.0) + tt
            continue
        for caller, (_c, _n, ctt, _cct) in callers.items():
            by = _area(caller) or "other"
            areas[by] = areas.get(by, 0.0) + ctt
    print(f"\nprofile of the API path ({title}; sender CPU under cProfile, timed section):")
    for area, tt in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"  {area:32} {tt / total * 100:5.1f}%")
    print("  top functions by own time (a coroutine's calls count its resumptions):")
    ranked = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    for (file, line, func), (_cc, nc, tt, _ct, _callers) in ranked:
        name = f"{Path(file).name}:{line}({func})" if line else func
        print(f"    {tt / total * 100:5.1f}%  {nc:8d} calls  {name[:80]}")


def api_section(
    state: Path,
    control: str,
    devices: Callable[[int], list[dict[str, Any]]],
    n: int,
    batch: int,
    core_rate: float,
    profile: bool,
) -> None:
    from pushsim.pgserver import PgServer, unavailable

    print(f"\nthe API path (APNs, N={n}; batch calls of {batch}; each sender its own process):")
    print(
        f"{'store':11} {'way in':28} {'notif/s':>9} {'accept/s':>9} {'ok':>6}"
        f" {'sender us/notif':>15} {'of core':>8}"
    )
    results: list[tuple[str, ApiResult]] = []
    db_dir = Path(tempfile.mkdtemp(prefix="pushsim-bench-db-"))
    stores: list[tuple[str, list[str] | None]] = [("sqlite", None)]
    why = unavailable()
    pg: PgServer | None = None
    if why is None:
        pg = PgServer()
        pg.start()
        stores.append(("postgresql", None))
    try:
        for name, _ in stores:
            for way, size in (("single (POST /v1/notifications)", 1), (f"batch of {batch}", batch)):
                flags = _store_flags(name, pg, db_dir, f"{name}-{size}")
                res = run_api(state, flags, devices, n, size, control, f"api-{name}-{size}")
                results.append((name, res))
                print(
                    f"{name:11} {way:28} {res.rate:9.0f} {res.ok / res.accepted_wall:9.0f}"
                    f" {res.ok:6d} {res.cpu / max(res.ok, 1) * 1e6:15.0f}"
                    f" {res.rate / core_rate * 100 if core_rate else 0:7.0f}%"
                )
        if pg is not None:
            scale(state, pg, devices, n, batch, control)
        else:
            print(f"postgresql: skipped ({why})")
        if profile:
            for size in (1, batch):
                prof = db_dir / f"profile-{size}.out"
                flags = _store_flags("sqlite", None, db_dir, f"profile-{size}")
                run_api(state, flags, devices, n, size, control, f"prof-{size}", 1, prof)
                print_profile(prof, n, "single API" if size == 1 else f"batch of {size}")
    finally:
        if pg is not None:
            pg.close()
    print()
    for _name, res in results:
        print(f"ratio {res.label:18} / core direct: {res.rate / core_rate if core_rate else 0:.2f}")


def _store_flags(name: str, pg: Any, db_dir: Path, db: str) -> list[str]:
    if name == "sqlite":
        return ["--store", f"sqlite:{db_dir / (db + '.db')}"]
    pg.create_database(db.replace("-", "_"))
    return ["--store", pg.database_url(db.replace("-", "_"))]


def scale(
    state: Path,
    pg: Any,
    devices: Callable[[int], list[dict[str, Any]]],
    n: int,
    batch: int,
    control: str,
) -> None:
    """PostgreSQL, one instance against two, by sender CPU-seconds per 10,000."""
    got: dict[int, ApiResult] = {}
    for k in (1, 2):
        flags = _store_flags("postgresql", pg, Path("."), f"scale-{k}")
        got[k] = run_api(state, flags, devices, n, batch, control, f"scale-{k}", k)
    one, two = got[1], got[2]
    print(
        f"postgresql scale-out: 1 instance {one.cpu_per_10k:.2f} sender CPU-s per 10k"
        f" ({one.rate:.0f}/s), 2 instances {two.cpu_per_10k:.2f} ({two.rate:.0f}/s):"
        f" 2 instances deliver {2 * one.cpu_per_10k / max(two.cpu_per_10k, 1e-9):.2f}x one"
        " (a core each)"
    )


def profiled(out: str, argv: list[str]) -> int:
    """``pushsim ARGV`` with cProfile on CPU time, on from SIGUSR1 until SIGUSR2 (then the
    profile is written to ``out``)."""
    sys.path.insert(0, str(ROOT))
    from pushsim.cli import main

    prof = cProfile.Profile(time.process_time)

    def stop(_sig: int, _frame: Any) -> None:
        prof.disable()
        prof.dump_stats(out)

    signal.signal(signal.SIGUSR1, lambda _sig, _frame: prof.enable())
    signal.signal(signal.SIGUSR2, stop)
    return main(argv)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--profiled":
    sys.exit(profiled(sys.argv[2], sys.argv[3:]))
