"""Locust users for pushsim scenarios. Runs only inside Locust's own process (gevent).

``pushsim run`` writes a configuration (scenario, population, URLs) and points
``PUSHSIM_LOCUST_CONFIG`` at it. Two kinds of users:

- :class:`AppServerUser`: an application server triggering notifications through the
  sender's API -- to a user, to explicit tokens or to a topic, with a mix of payload sizes
  and push types -- each carrying ``data.correlation_id`` so that the simulator can say
  whether it arrived (:mod:`loadtests.locust.sending` builds and sends them: one per call
  or ``traffic.batch`` per batch call, spread over the sender's instances when several);
- :class:`DeviceFleetUser`: the devices' side -- watches the simulator's token feed,
  re-registers reinstalled apps' new tokens with the same ``device_id``, acknowledges
  a share of received notifications through ``POST /v1/receipts``, reports what the
  simulated users opened, and starts the Live Activities (:mod:`loadtests.locust.live`).

Every notification request is logged (one JSON line per request, one file per process) to
the run's log directory; the harness judges them against the simulator's delivery log.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from locust import (
    FastHttpUser,
    HttpUser,
    LoadTestShape,
    constant,
    constant_throughput,
    events,
    task,
)

from loadtests.locust import config, live, sending
from loadtests.scenario.model import LoadShape
from loadtests.scenario.template import registration_values, render

CONFIG = config.read()
SCEN: dict[str, Any] = CONFIG.get("scenario", {})
LOAD = LoadShape(
    **SCEN.get("load", {"shape": "steady", "users": 1, "rate_per_user": 1, "spawn_rate": 1})
)
TRAFFIC: dict[str, Any] = SCEN.get("traffic", {})
DEVICES_CFG: dict[str, Any] = SCEN.get("devices", {})
TARGET: dict[str, Any] = SCEN.get("target", {})
DURATION = float(SCEN.get("duration", 10))
CONTROL = str(CONFIG.get("control", "http://127.0.0.1:1"))
RUN_ID = str(CONFIG.get("run_id", "run"))
RNG = random.Random(f"{CONFIG.get('seed', 1)}-{os.getpid()}")
SENDERS: list[str] = [str(u) for u in CONFIG.get("senders") or []]  # several: spread over them
BATCH = max(1, int(TRAFFIC.get("batch", 1)))  # notifications per call

# The population as this process sees it: device id -> current device record.
DEVICES: dict[str, dict[str, Any]] = {}
USERS: list[tuple[str, list[str]]] = []
for _u in CONFIG.get("users", []):
    USERS.append((_u["user_id"], [d["device_id"] for d in _u["devices"]]))
    for _d in _u["devices"]:
        DEVICES[_d["device_id"]] = dict(_d, user_id=_u["user_id"])
DEVICE_IDS = sorted(DEVICES)
# FCM topic -> devices the harness subscribed to it (empty: topic sends are not judged).
TOPIC_DEVICES: dict[str, list[str]] = {
    str(k): [str(d) for d in v] for k, v in (CONFIG.get("topic_devices") or {}).items()
}
AUDIENCE = sending.Audience(USERS, DEVICES, DEVICE_IDS, TOPIC_DEVICES)
CORR_TO_ID: dict[str, str] = {}
LIVE = live.LiveTraffic(TRAFFIC.get("live_activities") or {}, CONTROL, DEVICES)  # and opens
_lock = threading.Lock()


class RequestLog:
    """One JSON line per request, one file per process, written in buffered blocks.

    A line is cheap (no flush per request): the buffer goes to disk every
    :data:`FLUSH_EVERY_S` (so the progress line can count requests) and when Locust quits
    -- also on SIGTERM, through Locust's ``quitting`` event -- and at interpreter exit. A
    killed process loses at most the last second's lines, never a torn record the harness
    would count (it skips an unparseable last line).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._fh: Any = None
        self._last_flush = 0.0

    def write(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            log_dir = Path(CONFIG.get("log_dir", "."))
            log_dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(
                log_dir / f"{self.kind}-{os.getpid()}.jsonl",
                "a",
                buffering=1 << 16,
                encoding="utf-8",
            )
            self._last_flush = time.monotonic()
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_EVERY_S:
            self._last_flush = now
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.flush()
                self._fh.close()
            except (OSError, ValueError):
                pass
            self._fh = None


FLUSH_EVERY_S = 1.0
SENT_LOG = RequestLog("sent")
REG_LOG = RequestLog("registrations")


def _flush_logs(**_kw: Any) -> None:
    SENT_LOG.close()
    REG_LOG.close()


events.quitting.add_listener(_flush_logs)  # type: ignore[no-untyped-call]
atexit.register(_flush_logs)
_counter = itertools.count(1)
_turns = itertools.count()  # each user's first sender instance


class FeedWatcher:
    """Follows ``/_sim/feed`` so that this process always addresses devices' current tokens."""

    def __init__(self) -> None:
        self.seq = 0
        self.last_poll = 0.0

    def poll(self, client: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(20):  # bounded: at most 20 pages per poll
            with client.get(
                f"{CONTROL}/_sim/feed?since={self.seq}", name="/_sim/feed", catch_response=True
            ) as resp:
                if resp.status_code != 200:
                    resp.failure(f"feed: {resp.status_code}")
                    return out
                resp.success()
                body = resp.json()
            events = body.get("events", [])
            self.seq = int(body.get("last_seq", self.seq))
            out.extend(events)
            if len(events) < 1000:
                break
        self.last_poll = time.monotonic()
        for e in out:
            dev = DEVICES.get(str(e.get("device_id")))
            if dev is None:
                continue
            with _lock:
                if e.get("event") == "uninstalled":
                    dev["installed"] = False
                elif e.get("event") == "rotated":
                    dev["stale"] = True  # a new token exists; the device re-registers it
        return out


WATCHER = FeedWatcher()


def _app_wait() -> Any:
    rate = float(LOAD.rate_per_user) / BATCH  # rate_per_user counts notifications, not calls
    # rate 0: unlimited -- the next request goes as soon as the last one is answered
    return constant_throughput(rate) if rate > 0 else constant(0)


class AppServerUser(FastHttpUser):
    """An application server sending notifications through the sender's API.

    A :class:`FastHttpUser` (geventhttpclient): a fraction of ``HttpUser``'s CPU per
    request, so that one Locust process drives several times more notifications.
    """

    weight = 1
    wait_time = _app_wait()

    @task
    def notify(self) -> None:
        if not USERS:
            return
        if LIVE.turn(RNG):  # a Live Activity update or broadcast (traffic.live_activities)
            return LIVE.send(
                self.client, RNG, f"{RUN_ID}-{os.getpid()}-{next(_counter)}", SENT_LOG.write
            )
        several = len(SENDERS) > 1  # the same idempotency key if it goes to another instance
        items = [
            sending.compose(
                RNG,
                TRAFFIC,
                AUDIENCE,
                f"{RUN_ID}-{os.getpid()}-{next(_counter)}",
                idempotent=several,
            )
            for _ in range(BATCH)
        ]
        for corr, nid in sending.send(self.client, self.instances, TARGET, items, SENT_LOG.write):
            CORR_TO_ID[corr] = LIVE.nids[corr] = nid

    def on_start(self) -> None:
        self.instances = sending.Instances(SENDERS, first=next(_turns))
        # Without a device fleet in this process, follow the feed here to address live tokens.
        if time.monotonic() - WATCHER.last_poll > 1.0:
            WATCHER.poll(self.client)


class DeviceFleetUser(HttpUser):
    """The devices: re-register reinstalled apps' new tokens and acknowledge receipts."""

    fixed_count = 1
    wait_time = constant(float(DEVICES_CFG.get("feed_poll_s", 0.5)))

    def on_start(self) -> None:
        LIVE.apply_users(self.client, DEVICES_CFG)
        LIVE.setup(self.client, RUN_ID, SENT_LOG.write)

    def on_stop(self) -> None:
        LIVE.report_opens(self.client)

    @task
    def follow_devices(self) -> None:
        LIVE.report_opens(self.client)  # notifications the simulated users opened
        events = WATCHER.poll(self.client)
        if DEVICES_CFG.get("reregister_rotated", True):
            for e in events:
                if e.get("event") == "rotated" and str(e.get("device_id")) in DEVICES:
                    self.reregister(str(e["device_id"]))
        share = float(DEVICES_CFG.get("receipts", 0.0))
        if share > 0 and DEVICE_IDS and RNG.random() < 0.5:
            self.acknowledge(RNG.choice(DEVICE_IDS), share)

    def reregister(self, device_id: str) -> None:
        with self.client.get(
            f"{CONTROL}/_sim/devices/{device_id}", name="/_sim/devices/[id]", catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"device lookup: {resp.status_code}")
                return
            resp.success()
            cur = resp.json()
        dev = DEVICES[device_id]
        with _lock:
            dev["token"] = cur.get("token")
            if dev["provider"] == "webpush":
                dev["subscription"] = cur.get("subscription")
            dev["installed"] = bool(cur.get("installed", True))
            dev["stale"] = False
        reg = TARGET.get("register", {})
        body = render(reg.get("body", {}), registration_values(dev["user_id"], dev))
        started = time.time()
        with self.client.request(
            reg.get("method", "POST"),
            reg.get("path", "/v1/devices"),
            json=body,
            name="register rotated token",
            catch_response=True,
        ) as r:
            ok = r.status_code in (200, 201, 202, 204)
            if ok:
                r.success()
            else:
                r.failure(f"{r.status_code}: {r.text[:200]}")
        if ok and dev["provider"] == "fcm" and dev.get("installed", True):
            for topic in dev.get("topics") or ():
                # An app subscribes its new token to its topics again.
                with self.client.post(
                    f"/v1/topics/{quote(topic, safe='')}/subscribers",
                    json={"tokens": [dev["token"]]},
                    name="resubscribe rotated token",
                    catch_response=True,
                ) as sr:
                    if sr.status_code == 200:
                        sr.success()
                    else:
                        sr.failure(f"{sr.status_code}: {sr.text[:200]}")
        REG_LOG.write(
            {
                "t": started,
                "device_id": device_id,
                "token": str(dev["token"])[:32],
                "ok": ok,
                "st": r.status_code,
            }
        )

    def acknowledge(self, device_id: str, share: float) -> None:
        with self.client.get(
            f"{CONTROL}/_sim/devices/{device_id}/inbox",
            name="/_sim/devices/[id]/inbox",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"inbox: {resp.status_code}")
                return
            resp.success()
            messages = resp.json().get("messages", [])
        for msg in messages[-20:]:
            corr = msg.get("correlation_id")
            nid = CORR_TO_ID.pop(str(corr), None) if corr else None
            if nid is None or RNG.random() >= share:
                continue
            self.client.post(
                "/v1/receipts",
                json={"notification_id": nid, "token": msg.get("token"), "event": "delivered"},
                name="/v1/receipts",
            )


class ScenarioShape(LoadTestShape):
    """The scenario's load shape (steady, ramp or spike) over its duration."""

    def tick(self) -> tuple[int, float] | None:
        t = float(self.get_run_time())  # type: ignore[no-untyped-call]
        if t >= DURATION or not CONFIG:
            return None
        users = LOAD.users_at(t, DURATION)
        spawn = float(LOAD.spawn_rate)
        if LOAD.spiking(t):
            spawn = max(spawn, float(users))  # a spike arrives at once
        return users + 1, max(spawn, 1.0)  # +1: the device fleet (fixed_count)
