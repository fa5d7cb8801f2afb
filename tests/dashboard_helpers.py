"""What the dashboard tests share: an HTTP/2 client for the dashboard, and APNs load from a
real HTTP/2 client (httpx), both on loopback."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from simulator.testing.handle import SimulatorHandle, apns_provider_token

# Debian's Chromium, driven by Playwright (no browser download)
CHROMIUM = Path(os.environ.get("PUSHSIM_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    """A full-page screenshot into ``tmp_path`` (and ``$PUSHSIM_SCREENSHOTS``, if a directory)."""
    path = tmp_path / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    out = os.environ.get("PUSHSIM_SCREENSHOTS")
    if out and Path(out).is_dir():
        shutil.copy(path, Path(out) / path.name)


PAYLOAD = b'{"aps":{"alert":"hello from the dashboard tests"}}'


class DashClient:
    """The dashboard's API over HTTP/2 (TLS, the pushsim CA), with its token unless told not."""

    def __init__(self, sim: SimulatorHandle) -> None:
        self.url = sim.endpoints["dashboard"]
        self.token = sim.endpoints["dashboard_token"]
        self.http = httpx.Client(
            http2=True,
            verify=ssl.create_default_context(cafile=sim.endpoints["ca_file"]),
            timeout=10,
        )

    def call(
        self, method: str, path: str, body: Any = None, *, token: bool = True, **headers: str
    ) -> httpx.Response:
        sent = {"content-type": "application/json", **headers}
        if token:
            sent["x-pushsim-token"] = self.token
        content = None if body is None else json.dumps(body).encode()
        return self.http.request(method, self.url + path, content=content, headers=sent)

    def events(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        """The first ``count`` server-sent events of a fresh stream."""
        out: list[tuple[str, dict[str, Any]]] = []
        name = ""
        with self.http.stream("GET", f"{self.url}/api/events?token={self.token}") as r:
            assert r.status_code == 200 and r.http_version == "HTTP/2"
            assert r.headers["content-type"] == "text/event-stream"
            for line in r.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    out.append((name, json.loads(line[6:])))
                    if len(out) >= count:
                        break
        return out

    def close(self) -> None:
        self.http.close()


class ApnsLoad:
    """APNs sends from httpx's HTTP/2 client at about ``rate`` per second, in a thread."""

    def __init__(
        self,
        sim: SimulatorHandle,
        devices: int = 5,
        rate: float = 100.0,
        tokens: list[str] | None = None,
    ) -> None:
        self.sim = sim
        self.tokens = tokens or [d["token"] for d in sim.mint("apns", devices)]
        meta = json.loads((sim.state_dir / "apns" / "apns.json").read_text())
        self.headers = {
            "authorization": f"bearer {apns_provider_token(sim.state_dir)}",
            "apns-topic": meta["bundle_id"],
            "apns-push-type": "alert",
        }
        self.rate = rate
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, n: int) -> None:
        with httpx.Client(
            http2=True,
            verify=ssl.create_default_context(cafile=self.sim.endpoints["ca_file"]),
            timeout=10,
        ) as c:
            for i in range(n):
                self._one(c, i)

    def _one(self, client: httpx.Client, i: int) -> None:
        token = self.tokens[i % len(self.tokens)]
        url = f"{self.sim.endpoints['apns']}/3/device/{token}"
        r = client.post(url, content=PAYLOAD, headers=self.headers)
        self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1

    def _run(self) -> None:
        with httpx.Client(
            http2=True,
            verify=ssl.create_default_context(cafile=self.sim.endpoints["ca_file"]),
            timeout=10,
        ) as c:
            i = 0
            while not self._stop.is_set():
                began = time.monotonic()
                self._one(c, i)
                i += 1
                time.sleep(max(0.0, 1 / self.rate - (time.monotonic() - began)))

    def __enter__(self) -> ApnsLoad:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())
