"""Live Activity and broadcast traffic for the Locust users, and the opens the devices
report. Runs only inside Locust's own process (gevent): plain blocking calls.

With ``traffic.live_activities`` set (:mod:`loadtests.scenario.live`), the device fleet
starts, when the load begins, a broadcast channel through the sender
(``POST /v1/live-activities/channels``) and an activity on it on ``devices`` APNs devices
(each a push-to-start through ``POST /v1/live-activities``, the push-to-start token read
from the simulator); the activities' push tokens come from the simulator's Live Activity
feed. From then on ``share`` of the app servers' sends are Live Activity traffic: a
broadcast update on the channel (``broadcast`` of them; judged on every device with an
activity on it) or an update to one activity's token. Every one is logged like any
notification, with its ``correlation_id`` in ``data``.

The fleet also applies the scenario's users (``devices.open_probability``,
``devices.notifications_off``) and reports each notification a simulated user opened
(``GET /_sim/opens``) to the sender as an ``opened`` receipt.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

Log = Callable[[dict[str, Any]], None]
SETUP_WAIT_S = 10.0


class LiveTraffic:
    def __init__(self, cfg: dict[str, Any], control: str, devices: dict[str, Any]) -> None:
        self.share = float(cfg.get("share", 0.0))
        self.broadcast_share = float(cfg.get("broadcast", 0.5))
        self.wanted = int(cfg.get("devices", 0))
        self.control = control
        self.devices = devices
        self.channel: str | None = None
        self.activities: dict[str, str] = {}  # device id -> its activity's push token
        self.nids: dict[str, str] = {}  # correlation id -> the sender's notification id
        self.open_seq = 0
        self._lock = threading.Lock()

    # -- the fleet, at the start ----------------------------------------------------------

    def apply_users(self, client: Any, devices_cfg: dict[str, Any]) -> None:
        body = {
            "open_probability": float(devices_cfg.get("open_probability", 0.0)),
            "notifications_off_share": float(devices_cfg.get("notifications_off", 0.0)),
        }
        if any(body.values()):
            client.patch(f"{self.control}/_sim/users", json=body, name="/_sim/users")

    def setup(self, client: Any, run_id: str, log: Log) -> None:
        """Open the channel and start an activity on it on the chosen devices."""
        if self.share <= 0 or self.wanted <= 0:
            return
        with client.post(
            "/v1/live-activities/channels", json={}, name="create channel", catch_response=True
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"channel: {resp.status_code} {resp.text[:200]}")
                return
            resp.success()
            channel = str(resp.json()["channel_id"])
        chosen = [d for d, rec in sorted(self.devices.items()) if rec["provider"] == "apns"]
        started = {}
        for n, dev_id in enumerate(chosen[: self.wanted]):
            if self._start(client, dev_id, channel, f"{run_id}-la-start-{n}", log):
                started[dev_id] = True
        tokens = self._activity_tokens(client, set(started))
        with self._lock:
            self.channel, self.activities = channel, tokens

    def _start(self, client: Any, dev_id: str, channel: str, corr: str, log: Log) -> bool:
        with client.post(
            f"{self.control}/_sim/apns/devices/{dev_id}/push-to-start",
            json={},
            name="/_sim/apns/devices/[id]/push-to-start",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"push-to-start: {resp.status_code} {resp.text[:200]}")
                return False
            resp.success()
            pts = resp.json()["push_to_start_token"]
        body = {
            "token": pts,
            "event": "start",
            "attributes_type": "MatchAttributes",
            "attributes": {"home": "A", "away": "B"},
            "content_state": {"score": "0-0"},
            "input_push_channel": channel,
            "alert": {"title": "Kick-off"},
            "data": {"correlation_id": corr},
        }
        return self._post(
            client, "/v1/live-activities", body, "start activity", corr, [dev_id], log
        )

    def _activity_tokens(self, client: Any, devices: set[str]) -> dict[str, str]:
        tokens: dict[str, str] = {}
        seq, deadline = 0, time.monotonic() + SETUP_WAIT_S
        while len(tokens) < len(devices) and time.monotonic() < deadline:
            body = client.get(
                f"{self.control}/_sim/apns/live-activities/feed?since={seq}",
                name="/_sim/apns/live-activities/feed",
            ).json()
            for e in body.get("events", []):
                if e.get("event") == "activity_started" and e.get("device_id") in devices:
                    tokens[str(e["device_id"])] = str(e["token"])
            seq = int(body.get("last_seq", seq))
            if len(tokens) < len(devices):
                time.sleep(0.1)
        return tokens

    # -- the app servers ------------------------------------------------------------------

    def turn(self, rng: random.Random) -> bool:
        """Whether this send is Live Activity traffic (once the activities are up)."""
        return self.share > 0 and bool(self.activities) and rng.random() < self.share

    def send(self, client: Any, rng: random.Random, corr: str, log: Log) -> None:
        with self._lock:
            channel, activities = self.channel, dict(self.activities)
        state = {"score": f"{rng.randint(0, 5)}-{rng.randint(0, 5)}"}
        common: dict[str, Any] = {"event": "update", "content_state": state}
        common["data"] = {"correlation_id": corr}
        if channel is not None and rng.random() < self.broadcast_share:
            body = {"channel_id": channel, **common}
            path, name, devs = "/v1/live-activities/broadcasts", "broadcast", sorted(activities)
        else:
            dev_id = rng.choice(sorted(activities))
            body = {"token": activities[dev_id], "priority": 5, **common}
            path, name, devs = "/v1/live-activities", "update activity", [dev_id]
        self._post(client, path, body, name, corr, devs, log)

    @staticmethod
    def _post(
        client: Any,
        path: str,
        body: dict[str, Any],
        name: str,
        corr: str,
        devs: list[str],
        log: Log,
    ) -> bool:
        started = time.time()
        t0 = time.perf_counter()
        with client.post(path, json=body, name=name, catch_response=True) as resp:
            ok = resp.status_code == 200
            if ok:
                resp.success()
            else:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
        ms = (time.perf_counter() - t0) * 1000
        record = {"c": corr, "t": started, "ms": round(ms, 3), "st": resp.status_code, "ok": ok}
        log({**record, "kind": name, "dev": devs, "nid": None, "size": "small", "push": "la"})
        return bool(ok)

    # -- the devices, every tick ------------------------------------------------------------

    def report_opens(self, client: Any) -> None:
        """Each notification a simulated user opened, as an ``opened`` receipt."""
        for _ in range(20):  # bounded: at most 20 pages per tick
            body = client.get(
                f"{self.control}/_sim/opens?since={self.open_seq}", name="/_sim/opens"
            ).json()
            opens = body.get("opens", [])
            self.open_seq = int(body.get("last_seq", self.open_seq))
            for o in opens:
                nid = self.nids.get(str(o.get("correlation_id")))
                if nid is not None:
                    client.post(
                        "/v1/receipts",
                        json={"notification_id": nid, "token": self._token(o), "event": "opened"},
                        name="/v1/receipts (opened)",
                    )
            if len(opens) < 1000:
                return

    def _token(self, opened: dict[str, Any]) -> Any:
        """The token the sender delivered to: a Web Push subscription's endpoint."""
        rec = self.devices.get(str(opened.get("device_id"))) or {}
        if rec.get("provider") == "webpush":
            return (rec.get("subscription") or {}).get("endpoint", opened.get("token"))
        return opened.get("token")
