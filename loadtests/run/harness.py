"""Running a scenario end to end: simulator, sender, population, Locust, ground truth.

``run(scenario, options)`` returns a :class:`RunResult` with the measures, the verdicts
and the paths it wrote. Every child process is stopped on the way out, also on Ctrl-C.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml

from loadtests.judge.cpu import CpuSampler, busy_levels, cpu_series, verdict
from loadtests.judge.measures import GroundTruth, compute, parse_prometheus
from loadtests.judge.objectives import Verdict, judge
from loadtests.judge.series import series
from loadtests.run.processes import ProcessGroup, wait_for_file
from loadtests.scenario.model import Scenario

# found, not imported: importing it would monkey-patch this process with gevent
_LOCUST_SPEC = importlib.util.find_spec("loadtests.locust.locustfile")
assert _LOCUST_SPEC is not None and _LOCUST_SPEC.origin is not None
LOCUSTFILE = Path(_LOCUST_SPEC.origin)
PAGE = 10_000  # /_sim/deliveries page size


class HarnessError(RuntimeError):
    """The run could not be carried out (a part did not start, or died)."""


@dataclass
class RunOptions:
    out: Path
    quick: bool = False
    target: str | None = None  # someone else's sender
    simulator_dir: Path | None = None  # an already running simulator (its state dir)
    workers: int = 0
    seed: int | None = None
    progress: bool = True
    startup_timeout: float = 30.0


@dataclass
class RunResult:
    scenario: Scenario
    out: Path
    measures: dict[str, Any]
    verdicts: list[Verdict]
    series: dict[str, Any]
    faults: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, Any] = field(
        default_factory=dict
    )  # where the time went (see loadtests.judge.cpu)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


def _py_pushsim(*args: str) -> list[str]:
    return [sys.executable, "-m", "pushsim", *args]


def _locust_bin() -> list[str]:
    exe = Path(sys.executable).with_name("locust")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "locust"]


class Progress:
    """A single status line while the load runs (a line every few seconds when not a TTY)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + text)
            sys.stderr.flush()
        elif force or now - self.last >= 5.0:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            self.last = now

    def done(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def say(self, text: str) -> None:
        if self.enabled:
            if self.tty:
                sys.stderr.write("\r\x1b[2K")
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


class Run:
    def __init__(self, scenario: Scenario, options: RunOptions, procs: ProcessGroup) -> None:
        self.sc = scenario
        self.opt = options
        self.procs = procs
        self.out = options.out
        self.progress = Progress(options.progress)
        self.endpoints: dict[str, str] = {}
        self.sender_url = ""
        self.seed = options.seed if options.seed is not None else scenario.seed
        self.session: aiohttp.ClientSession | None = None
        self.metric_samples: list[tuple[float, dict[str, float]]] = []
        self.info: dict[str, Any] = {}
        self.cpu = CpuSampler(self.running_children, {"pushsim run": os.getpid()})

    def running_children(self) -> dict[str, int]:
        """The run's child processes still running, by name (each leads its process group)."""
        return {
            name: proc.pid
            for name, proc in list(self.procs.children.items())
            if proc.poll() is None
        }

    # -- HTTP helpers ---------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self.session is not None
        return self.session

    async def get_json(self, url: str, limit_s: float = 10.0) -> Any:
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=limit_s)) as r:
            if r.status != 200:
                raise HarnessError(f"GET {url}: {r.status} {(await r.text())[:200]}")
            return await r.json(content_type=None)

    async def try_json(self, url: str, limit_s: float = 5.0) -> Any:
        try:
            return await self.get_json(url, limit_s)
        except (aiohttp.ClientError, TimeoutError, HarnessError, ValueError):
            return None

    async def sender_metrics(self) -> dict[str, float] | None:
        path = self.sc.target.metrics
        if not path:
            return None
        try:
            async with self.http.get(
                self.sender_url + path, timeout=aiohttp.ClientTimeout(total=5)
            ) as r:
                if r.status != 200:
                    return None
                return parse_prometheus(await r.text())
        except (aiohttp.ClientError, TimeoutError):
            return None

    # -- parts ------------------------------------------------------------------------

    def write_effective_scenario(self) -> Path:
        path = self.out / "scenario.yaml"
        raw = dict(self.sc.raw)
        raw.pop("quick", None)
        raw["seed"] = self.seed
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    async def start_simulator(self, scenario_file: Path) -> None:
        if self.opt.simulator_dir is not None:
            ep = self.opt.simulator_dir / "endpoints.json"
            if not ep.exists():
                raise HarnessError(
                    f"--simulator {self.opt.simulator_dir}: no endpoints.json "
                    "(is the simulator running?)"
                )
            self.endpoints = json.loads(ep.read_text())
            self.info["simulator_dir"] = str(self.opt.simulator_dir)
            return
        state = self.out / "simulator"
        argv = _py_pushsim(
            "simulator",
            "--state-dir",
            str(state),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--seed",
            str(self.seed),
        )
        if self.sc.faults:
            argv += ["--scenario", str(scenario_file)]
        self.procs.start("simulator", argv, self.out / "simulator.log")
        ok = await asyncio.to_thread(
            wait_for_file,
            state / "endpoints.json",
            self.opt.startup_timeout,
            alive=lambda: self.procs.alive("simulator"),
        )
        if not ok:
            raise HarnessError(_died("the simulator did not start", self.out / "simulator.log"))
        self.endpoints = json.loads((state / "endpoints.json").read_text())
        self.info["simulator_dir"] = str(state)

    async def start_sender(self) -> None:
        if self.opt.target:
            self.sender_url = self.opt.target.rstrip("/")
            return
        ready = self.out / "sender.ready"
        sim_dir = self.info["simulator_dir"]
        argv = _py_pushsim(
            "sender",
            "--simulator",
            sim_dir,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            str(self.out / "sender.db"),
            "--ready-file",
            str(ready),
        )
        self.procs.start("sender", argv, self.out / "sender.log")
        ok = await asyncio.to_thread(
            wait_for_file, ready, self.opt.startup_timeout, alive=lambda: self.procs.alive("sender")
        )
        if not ok:
            raise HarnessError(_died("the sender did not start", self.out / "sender.log"))
        for _ in range(20):
            try:
                self.sender_url = str(json.loads(ready.read_text())["url"]).rstrip("/")
                break
            except (ValueError, KeyError):
                await asyncio.sleep(0.05)
        if not self.sender_url:
            raise HarnessError(f"the sender's ready file {ready} has no url")

    async def wait_sender_healthy(self) -> None:
        path = self.sc.target.health
        if not path:
            return
        deadline = time.monotonic() + self.opt.startup_timeout
        while time.monotonic() < deadline:
            if await self.try_json(self.sender_url + path, 2) is not None:
                return
            await asyncio.sleep(0.1)
        raise HarnessError(f"the sender at {self.sender_url} does not answer {path}")

    async def mint_population(self) -> list[dict[str, Any]]:
        control = self.endpoints["control"]
        minted: list[dict[str, Any]] = []
        vapid = Path(self.info["simulator_dir"]) / "webpush" / "vapid.json"
        for provider, count in self.sc.population.devices.items():
            if count <= 0:
                continue
            body: dict[str, Any] = {"provider": provider, "count": count}
            if provider == "webpush" and vapid.exists():
                try:
                    body["application_server_key"] = json.loads(vapid.read_text())["public_key"]
                except (ValueError, KeyError):
                    pass
            async with self.http.post(f"{control}/_sim/devices", json=body) as r:
                if r.status != 201:
                    raise HarnessError(
                        f"minting {count} {provider} devices: {r.status} {(await r.text())[:200]}"
                    )
                minted.extend((await r.json())["devices"])
        # Interleave providers, then spread round-robin over the app's users.
        minted.sort(key=lambda d: int(str(d["id"]).rsplit("-", 1)[-1]))
        users: list[dict[str, Any]] = [
            {"user_id": f"{self.sc.name}-u{i + 1}", "devices": []}
            for i in range(self.sc.population.users)
        ]
        for i, d in enumerate(minted):
            u = users[i % len(users)]
            u["devices"].append(
                {
                    "device_id": d["id"],
                    "provider": d["provider"],
                    "token": d.get("token"),
                    "subscription": d.get("subscription"),
                    "installed": True,
                }
            )
        return [u for u in users if u["devices"]]

    async def register_population(self, users: list[dict[str, Any]]) -> None:
        from loadtests.scenario.template import render

        reg = self.sc.target.register
        sem = asyncio.Semaphore(16)
        failures: list[str] = []

        async def one(user_id: str, dev: dict[str, Any]) -> None:
            values = {
                "user_id": user_id,
                "provider": dev["provider"],
                "token": dev["token"] if dev["provider"] != "webpush" else None,
                "subscription": dev["subscription"] if dev["provider"] == "webpush" else None,
                "device_id": dev["device_id"],
            }
            body = render(reg.body, values)
            async with sem:
                try:
                    async with self.http.request(
                        reg.method, self.sender_url + reg.path, json=body
                    ) as r:
                        if r.status >= 300:
                            failures.append(
                                f"{dev['device_id']}: {r.status} {(await r.text())[:200]}"
                            )
                except aiohttp.ClientError as exc:
                    failures.append(f"{dev['device_id']}: {exc}")

        await asyncio.gather(*(one(u["user_id"], d) for u in users for d in u["devices"]))
        if failures:
            raise HarnessError(
                f"the sender refused {len(failures)} device registrations, e.g. {failures[0]}"
            )

    async def subscribe_topics(self, users: list[dict[str, Any]]) -> dict[str, list[str]]:
        """Subscribe half the FCM population to the scenario's topics (round-robin) through
        ``POST /v1/topics/{topic}/subscribers``; topic id -> subscribed device ids. A sender
        without that call gets {} (topic sends are then accepted but not judged)."""
        sc = self.sc
        if sc.traffic.to.get("topic", 0.0) <= 0 or not sc.traffic.topics:
            return {}
        fcm = [d for u in users for d in u["devices"] if d["provider"] == "fcm"]
        topics = list(sc.traffic.topics)
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for k, dev in enumerate(fcm[::2]):
            by_topic.setdefault(topics[k % len(topics)], []).append(dev)
        out: dict[str, list[str]] = {}
        for topic, devs in by_topic.items():
            url = f"{self.sender_url}/v1/topics/{quote(topic, safe='')}/subscribers"
            status: int | str
            try:
                async with self.http.post(url, json={"tokens": [d["token"] for d in devs]}) as r:
                    doc = await r.json(content_type=None) if r.status == 200 else None
                    status = r.status
            except (aiohttp.ClientError, ValueError) as exc:
                doc, status = None, str(exc)
            if not isinstance(doc, dict):
                self.progress.say(
                    f"pushsim run {sc.name}: the sender did not take topic subscriptions "
                    f"({status}): topic sends are accepted but not judged"
                )
                return {}
            ok = {
                res.get("token")
                for res in doc.get("results", [])
                if isinstance(res, dict) and res.get("status") == "subscribed"
            }
            out[topic] = [d["device_id"] for d in devs if d["token"] in ok]
            for d in devs:
                if d["token"] in ok:
                    d["topics"] = [topic]  # the device re-subscribes a rotated token
        return out

    def locust_config(
        self, users: list[dict[str, Any]], topic_devices: dict[str, list[str]] | None = None
    ) -> Path:
        sc = self.sc
        cfg = {
            "topic_devices": topic_devices or {},
            "run_id": f"{sc.name}{int(time.time()) % 100000}",
            "seed": self.seed,
            "control": self.endpoints["control"],
            "log_dir": str(self.out / "requests"),
            "users": users,
            "scenario": {
                "name": sc.name,
                "duration": sc.duration,
                "load": {
                    "shape": sc.load.shape,
                    "users": sc.load.users,
                    "rate_per_user": sc.load.rate_per_user,
                    "spawn_rate": sc.load.spawn_rate,
                    "from_users": sc.load.from_users,
                    "spike_users": sc.load.spike_users,
                    "spike_at": sc.load.spike_at,
                    "spike_for": sc.load.spike_for,
                },
                "traffic": {
                    "to": sc.traffic.to,
                    "payload": sc.traffic.payload,
                    "push_type": sc.traffic.push_type,
                    "high_priority": sc.traffic.high_priority,
                    "ttl": sc.traffic.ttl,
                    "topics": list(sc.traffic.topics),
                },
                "devices": {
                    "reregister_rotated": sc.devices.reregister_rotated,
                    "receipts": sc.devices.receipts,
                    "feed_poll_s": sc.devices.feed_poll_s,
                },
                "target": {
                    "register": {
                        "method": sc.target.register.method,
                        "path": sc.target.register.path,
                        "body": sc.target.register.body,
                    },
                    "notify": {
                        "method": sc.target.notify.method,
                        "path": sc.target.notify.path,
                        "body": sc.target.notify.body,
                    },
                    "accepted_status": list(sc.target.accepted_status),
                    "id_field": sc.target.id_field,
                },
            },
        }
        path = self.out / "locust-config.json"
        path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
        return path

    def start_locust(self, config: Path) -> None:
        common = ["-f", str(LOCUSTFILE), "--host", self.sender_url, "--loglevel", "WARNING"]
        env = {"PUSHSIM_LOCUST_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
        run_time = f"{int(self.sc.duration + 10)}s"
        head = [
            *_locust_bin(),
            *common,
            "--headless",
            "--run-time",
            run_time,
            "--stop-timeout",
            "3",
            "--csv",
            str(self.out / "locust"),
            "--csv-full-history",
            "--html",
            str(self.out / "locust.html"),
            "--only-summary",
            "--exit-code-on-error",
            "0",
        ]
        if self.opt.workers > 0:
            port = _free_port()
            head += [
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(self.opt.workers),
                "--expect-workers-max-wait",
                "30",
            ]
            self.procs.start("locust-master", head, self.out / "locust.log", env)
            for i in range(self.opt.workers):
                argv = [
                    *_locust_bin(),
                    *common,
                    "--worker",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    str(port),
                ]
                self.procs.start(
                    f"locust-worker-{i + 1}", argv, self.out / f"locust-worker-{i + 1}.log", env
                )
        else:
            self.procs.start("locust", head, self.out / "locust.log", env)

    async def status_line(
        self, started: float, users_hint: int
    ) -> tuple[str, dict[str, float] | None]:
        metrics = await self.sender_metrics()
        if metrics is not None:
            self.metric_samples.append((time.time(), metrics))
        stats = await self.try_json(self.endpoints["control"] + "/_sim/stats", 2)
        delivered = (
            int(stats.get("deliveries", 0)) - self.info.get("deliveries_before", 0) if stats else 0
        )
        sent = _count_lines(self.out / "requests", "sent-")
        el = time.monotonic() - started
        parts = [
            f"[{el:5.1f}s/{self.sc.duration:g}s] {self.sc.name}: users {users_hint}",
            f"notifications {sent}",
        ]
        parts.append(f"device deliveries {delivered}")
        if metrics is not None:
            q = metrics.get("pushsim_sender_queue_depth")
            if q is not None:
                parts.append(f"queue {int(q)}")
            r = metrics.get("pushsim_sender_retries_total")
            if r is not None:
                parts.append(f"retries {int(r)}")
        return "  ".join(parts), metrics

    async def drive_load(self, config: Path) -> tuple[float, float]:
        self.start_locust(config)
        started_mono = time.monotonic()
        started = time.time()
        main = "locust-master" if self.opt.workers > 0 else "locust"
        deadline = started_mono + self.sc.duration + 30 + (30 if self.opt.workers else 0)
        while self.procs.alive(main) and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            el = time.monotonic() - started_mono
            line, _ = await self.status_line(
                started_mono, self.sc.load.users_at(el, self.sc.duration)
            )
            self.progress.show(line)
            if not self.opt.target and not self.procs.alive("sender"):
                raise HarnessError(_died("the sender died during the run", self.out / "sender.log"))
        if self.procs.alive(main):
            self.progress.say("pushsim run: Locust overran its run time; stopping it")
        self.procs.stop(main, grace=10)
        for name in list(self.procs.children):
            if name.startswith("locust-worker"):
                self.procs.stop(name)
        ended = time.time()
        rc = self.procs.children[main].returncode
        self.info["locust_exit"] = rc
        if rc not in (0, 1, -15, None) and not (self.out / "requests").exists():
            raise HarnessError(_died(f"Locust failed (exit {rc})", self.out / "locust.log"))
        return started, ended

    async def drain(self) -> None:
        """Wait (bounded) until the sender's queue is empty and deliveries stop arriving."""
        deadline = time.monotonic() + self.sc.drain_timeout
        stable_since: float | None = None
        last = -1
        while time.monotonic() < deadline:
            stats = await self.try_json(self.endpoints["control"] + "/_sim/stats", 2)
            count = int(stats.get("deliveries", 0)) if stats else -1
            queue = 0.0
            metrics = await self.sender_metrics()
            if metrics is not None:
                self.metric_samples.append((time.time(), metrics))
                queue = metrics.get("pushsim_sender_queue_depth", 0.0)
            idle = queue == 0 and count == last
            if idle:
                stable_since = stable_since or time.monotonic()
                if time.monotonic() - stable_since >= 1.0:
                    return
            else:
                stable_since = None
            last = count
            self.progress.show(f"draining: queue {int(queue)}, simulator deliveries {count}")
            await asyncio.sleep(0.25)
        self.progress.say(
            f"pushsim run: the sender did not drain within {self.sc.drain_timeout:g}s"
        )
        self.info["drain_timed_out"] = True

    async def read_pages(self, path: str, key: str, since: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(1000):
            body = await self.get_json(f"{self.endpoints['control']}{path}?since={since}", 30)
            items = body.get(key, [])
            out.extend(items)
            new_since = int(body.get("last_seq", since))
            if not items or new_since <= since:
                break
            since = new_since
        return out

    async def sender_devices(self, path: str | None) -> list[dict[str, Any]] | None:
        if not path:
            return None
        body = await self.try_json(self.sender_url + path, 30)
        if not isinstance(body, dict) or not isinstance(body.get("devices"), list):
            return None
        return list(body["devices"])

    async def faults_timeline(self) -> list[dict[str, Any]]:
        body = await self.try_json(self.endpoints["control"] + "/_sim/timeline", 5)
        return fault_windows(body)

    async def main(self) -> RunResult:
        scenario_file = self.write_effective_scenario()
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as self.session:
            self.progress.say(
                f"pushsim run {self.sc.name}: starting the simulator and the sender "
                f"(output in {self.out})"
            )
            await self.start_simulator(scenario_file)
            await self.start_sender()
            await self.wait_sender_healthy()
            stats0 = await self.get_json(self.endpoints["control"] + "/_sim/stats")
            self.info["deliveries_before"] = int(stats0.get("deliveries", 0))
            feed0 = await self.get_json(self.endpoints["control"] + "/_sim/feed?since=0")
            feed_since = int(feed0.get("last_seq", 0))
            users = await self.mint_population()
            await self.register_population(users)
            population = {d["device_id"] for u in users for d in u["devices"]}
            ndev = len(population)
            self.progress.say(
                f"pushsim run {self.sc.name}: {ndev} devices for {len(users)} users "
                f"registered with "
                f"{self.sender_url}; load {self.sc.load.shape} for {self.sc.duration:g}s"
            )
            topic_devices = await self.subscribe_topics(users)
            config = self.locust_config(users, topic_devices)
            metrics_start = await self.sender_metrics()
            await self.arm_faults()
            self.cpu.start()
            try:
                load_started, load_ended = await self.drive_load(config)
                self.progress.done()
                await self.drain()
                self.progress.done()
            finally:
                self.cpu.stop()
            ended = time.time()
            metrics_end = await self.sender_metrics()
            if metrics_end is not None:
                self.metric_samples.append((ended, metrics_end))
            deliveries = await self.read_pages(
                "/_sim/deliveries", "deliveries", self.info["deliveries_before"]
            )
            feed = [
                e
                for e in await self.read_pages("/_sim/feed", "events", feed_since)
                if e.get("device_id") in population
            ]
            dead_body = await self.get_json(self.endpoints["control"] + "/_sim/dead_tokens", 30)
            dead = [r for r in dead_body.get("tokens", []) if r.get("device_id") in population]
            sim_stats = await self.get_json(self.endpoints["control"] + "/_sim/stats")
            sender_dead = await self.sender_devices(self.sc.target.devices_dead)
            sender_active = await self.sender_devices(self.sc.target.devices_active)
            faults = await self.faults_timeline()
            await self.clear_posted_faults()
        sent = _read_jsonl(self.out / "requests", "sent-")
        registrations = _read_jsonl(self.out / "requests", "registrations-")
        gt = GroundTruth(
            sent=sent,
            deliveries=deliveries,
            feed=feed,
            dead_tokens=dead,
            sim_stats=sim_stats,
            sender_dead=sender_dead,
            sender_active=sender_active,
            metrics_start=metrics_start,
            metrics_end=metrics_end,
            metric_samples=self.metric_samples,
            registrations=registrations,
            load_started_at=load_started,
            load_ended_at=load_ended,
            ended_at=ended,
            grace_s=max(3.0, self.sc.devices.feed_poll_s * 4),
        )
        measures = compute(gt)
        measures["reregistrations"] = len(registrations)
        measures["token_events"] = len(feed)
        cpu = self.where_the_time_went(load_started, load_ended)
        measures["simulator_cpu_pct"] = cpu["verdict"]["simulator_pct"]
        measures["simulator_cpu_share"] = cpu["verdict"]["simulator_share"]
        verdicts = judge(self.sc.objectives, measures)
        ser = series(gt)
        ser["cpu"] = cpu_series(
            self.cpu.samples, load_started, len(ser["sent"]), float(ser.get("bucket_s", 1.0))
        )
        faults = [f for f in faults if not f["absolute"] or f["end"] >= load_started - 1]
        for f in faults:
            f["start_s"] = f["start"] - load_started if f.get("absolute") else f["start"]
            f["end_s"] = f["end"] - load_started if f.get("absolute") else f["end"]
        self.info.update(
            sender=self.sender_url,
            endpoints=self.endpoints,
            devices=ndev,
            users=len(users),
            load_started_at=load_started,
            load_ended_at=load_ended,
            ended_at=ended,
            quick=self.opt.quick,
            workers=self.opt.workers,
            seed=self.seed,
            target=self.opt.target,
        )
        return RunResult(self.sc, self.out, measures, verdicts, ser, faults, self.info, cpu)

    def where_the_time_went(self, load_started: float, load_ended: float) -> dict[str, Any]:
        levels = busy_levels(self.cpu.samples, load_started, load_ended)
        return {
            "available": self.cpu.available,
            "cores": self.cpu.cores,
            "interval_s": self.cpu.interval,
            "unit": "% of one core",
            "levels": levels,
            "verdict": verdict(levels, self.cpu.cores),
        }

    async def arm_faults(self) -> None:
        """Start the fault timeline now, at the start of load.

        A simulator we started read the plan from the scenario file: its run clock is re-armed.
        A simulator already running (``--simulator DIR``) gets the plan through
        ``POST /_sim/faults``
        (windows count from the POST).
        """
        if not self.sc.faults:
            return
        control = self.endpoints["control"]
        try:
            if self.opt.simulator_dir is not None:
                plan = self.sc.faults if isinstance(self.sc.faults, list) else [self.sc.faults]
                async with self.http.post(f"{control}/_sim/faults", json={"faults": plan}) as r:
                    if r.status >= 300:
                        raise HarnessError(
                            "the simulator refused the fault plan: "
                            f"{r.status} {(await r.text())[:300]}"
                        )
                    self.info["faults_posted"] = [
                        f.get("id") for f in (await r.json()).get("faults", [])
                    ]
            else:
                async with self.http.post(f"{control}/_sim/timeline/start", json={}) as r:
                    self.info["faults_armed"] = r.status < 300
        except aiohttp.ClientError as exc:
            raise HarnessError(f"cannot arm the fault plan: {exc}") from exc

    async def clear_posted_faults(self) -> None:
        ids = self.info.get("faults_posted") or []
        for fid in ids:
            try:
                async with self.http.delete(f"{self.endpoints['control']}/_sim/faults/{fid}"):
                    pass
            except aiohttp.ClientError:
                pass


def fault_windows(body: Any) -> list[dict[str, Any]]:
    """Fault windows from ``/_sim/timeline`` (tolerant of its exact shape)."""
    items: list[Any] = []
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        for key in ("windows", "faults", "timeline", "events"):
            if isinstance(body.get(key), list):
                items = body[key]
                break
    out: list[dict[str, Any]] = []
    for it in items:
        if not isinstance(it, dict):
            continue
        start = it.get("start_wall", it.get("start_at", it.get("start", it.get("at"))))
        end = it.get("end_wall", it.get("end_at", it.get("end")))
        if (
            end is None
            and isinstance(start, (int, float))
            and isinstance(it.get("duration"), (int, float))
        ):
            end = start + it["duration"]
        if not isinstance(start, (int, float)):
            continue
        if not isinstance(end, (int, float)):
            end = start
        absolute = start > 1_000_000_000
        window: dict[str, Any] = {
            "kind": str(it.get("kind", it.get("type", "fault"))),
            "provider": str(it.get("provider", "")),
            "start": float(start),
            "end": float(end),
            "absolute": absolute,
            "count": it.get("count", it.get("injected")),
        }
        # What sets it apart from another fault of its kind (churn action, outage mode,
        # throttle scope): two ``token_churn any`` windows otherwise read the same.
        if isinstance(it.get("variant"), str) and it["variant"]:
            window["variant"] = it["variant"]
        out.append(window)
    return out


def _died(what: str, log: Path) -> str:
    return f"{what}; see {log}:\n{_tail(log)}"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _read_jsonl(directory: Path, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not directory.exists():
        return out
    for p in sorted(directory.glob(f"{prefix}*.jsonl")):
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a torn last line from a killed process
    return out


def _count_lines(directory: Path, prefix: str) -> int:
    if not directory.exists():
        return 0
    n = 0
    for p in directory.glob(f"{prefix}*.jsonl"):
        try:
            n += p.read_bytes().count(b"\n")
        except OSError:
            continue
    return n


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(scenario: Scenario, options: RunOptions) -> RunResult:
    options.out.mkdir(parents=True, exist_ok=True)
    requests_dir = options.out / "requests"
    if requests_dir.exists():
        shutil.rmtree(requests_dir)
    # an out directory used before: the last run's ready file, endpoints and outbox would be
    # taken for this run's (a dead sender's URL, a dead simulator's ports, old notifications)
    for stale in ("sender.ready", "sender.db", "sender.db-wal", "sender.db-shm"):
        (options.out / stale).unlink(missing_ok=True)
    (options.out / "simulator" / "endpoints.json").unlink(missing_ok=True)
    with ProcessGroup() as procs:
        runner = Run(scenario, options, procs)
        return asyncio.run(runner.main())


def default_out(scenario: Scenario) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("out") / f"{scenario.name}-{stamp}-{os.getpid() % 1000:03d}"
