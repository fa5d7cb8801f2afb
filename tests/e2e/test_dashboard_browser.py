"""The dashboard in a real browser: Playwright driving Debian's Chromium.

Load the page, watch the counters move under APNs load from a real HTTP/2 client (some of it
to uninstalled devices: the token feed and the dead-token sends fill in), click
"outage APNs 10 s", see 503s in the chart and in ``/_sim/timeline``, clear the fault; a
page on another name (DNS rebinding) and a page without the token are refused.

Screenshots (idle, under load, during the outage) are saved in the test's directory, and
also into ``$PUSHSIM_SCREENSHOTS`` when that names a directory (docs/ keeps the ones shown
in docs/dashboard.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from dashboard_helpers import ARGS, CHROMIUM, ApnsLoad, shoot

from simulator.testing.handle import SimulatorHandle

REBIND = "rebind.example"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (tasks.py installs Debian's chromium when run as root)",
        allow_module_level=True,
    )


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*ARGS, f"--host-resolver-rules=MAP {REBIND} 127.0.0.1"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        ignore_https_errors=True, viewport={"width": 1440, "height": 1100}
    )
    pg = context.new_page()
    yield pg
    context.close()


def _number(page: Any, selector: str) -> float:
    text = page.inner_text(selector).strip().rstrip("k")
    return float(text) if text and text[0].isdigit() else 0.0


def _wait_until(ok: Callable[[], bool], seconds: float) -> None:
    """Poll (the page's CSP forbids the string evaluation wait_for_function uses)."""
    deadline = time.monotonic() + seconds
    while not ok():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _timeline_503s(sim: SimulatorHandle) -> tuple[list[dict[str, Any]], int]:
    tl = sim.control("GET", "/_sim/timeline")
    windows = [w for w in tl["windows"] if w["kind"] == "outage" and w["provider"] == "apns"]
    injected = sum(t["count"] for t in tl["totals"] if t["provider"] == "apns")
    return windows, injected


def test_watch_load_break_apns_and_clear_it(
    dash_sim: SimulatorHandle, page: Any, tmp_path: Path
) -> None:
    page.goto(f"{dash_sim.endpoints['dashboard']}/?token={dash_sim.endpoints['dashboard_token']}")
    page.wait_for_selector("#link.on", timeout=10_000)
    page.wait_for_selector("button[data-preset=outage][data-provider=apns]")
    time.sleep(2.5)  # a few idle ticks on the charts
    assert _number(page, "#total-apns") == 0
    shoot(page, tmp_path, "idle")

    load = ApnsLoad(dash_sim, devices=20, rate=80)
    gone = dash_sim.mint("apns", 2)  # uninstalled: the load keeps sending to them
    for dev in gone:
        dash_sim.control("DELETE", f"/_sim/devices/{dev['id']}")
    load.tokens += [d["token"] for d in gone]
    with load:
        _wait_until(lambda: _number(page, "#total-apns") > 100, 15)
        page.wait_for_selector("#rate-apns polyline[data-series='200']")
        page.wait_for_selector("#rate-apns polyline[data-series='410']")
        assert _number(page, "#now-apns") > 0 and _number(page, "#conns-apns") >= 1
        assert len(page.query_selector_all("#dead tbody tr")) == 2  # the dead-token sends
        assert "uninstalled" in page.inner_text("#feed")  # the token feed
        time.sleep(2)
        shoot(page, tmp_path, "load")

        page.get_by_role("button", name="outage APNs 10 s").click()
        page.wait_for_selector("#rate-apns polyline[data-series='503']", timeout=10_000)
        page.wait_for_selector("#fault-plan tr[data-fault] >> text=active")
        page.wait_for_selector("#fault-axis rect[data-fault]")
        time.sleep(2.5)
        shoot(page, tmp_path, "outage")
        windows, injected = _timeline_503s(dash_sim)
        assert windows and windows[0]["open"] and injected > 0
        assert load.statuses.get(503, 0) > 0

        page.click("#fault-plan tr[data-fault] button")
        page.wait_for_selector("#fault-plan >> text=no faults in the plan", timeout=10_000)
        assert dash_sim.control("GET", "/_sim/faults")["faults"] == []
        windows, _ = _timeline_503s(dash_sim)
        assert not windows[0]["open"]
        before = load.statuses.get(200, 0)
        deadline = time.monotonic() + 10
        while load.statuses.get(200, 0) <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert load.statuses.get(200, 0) > before  # answered again once cleared
    assert load.sent >= 300


def test_find_a_device_and_read_its_inbox(dash_sim: SimulatorHandle, page: Any) -> None:
    (dev,) = dash_sim.mint("apns")
    ApnsLoad(dash_sim, tokens=[dev["token"]]).send(3)
    page.goto(f"{dash_sim.endpoints['dashboard']}/?token={dash_sim.endpoints['dashboard_token']}")
    page.wait_for_selector("#link.on")
    page.fill("#find-token", dev["token"])
    page.click("#find-form button")
    page.wait_for_selector("#inbox")
    assert "hello from the dashboard tests" in page.inner_text("#inbox")
    page.get_by_role("button", name="take offline").click()
    page.wait_for_selector("#device-state >> text=offline")
    assert dash_sim.control("GET", f"/_sim/devices/{dev['id']}")["online"] is False
    page.get_by_role("button", name="rotate (reinstall)").click()
    _wait_until(lambda: dev["token"] not in page.inner_text("#device .mono"), 10)
    assert dash_sim.control("GET", f"/_sim/devices/{dev['id']}")["token"] != dev["token"]


def test_a_page_on_another_name_is_refused(dash_sim: SimulatorHandle, page: Any) -> None:
    port = urlsplit(dash_sim.endpoints["dashboard"]).port
    token = dash_sim.endpoints["dashboard_token"]
    response = page.goto(f"https://{REBIND}:{port}/?token={token}")
    assert response is not None and response.status == 403
    assert "is not this dashboard" in page.inner_text("body")


def test_a_page_without_the_token_cannot_act(dash_sim: SimulatorHandle, page: Any) -> None:
    page.goto(f"{dash_sim.endpoints['dashboard']}/")
    page.wait_for_selector("#link >> text=refused")
    status = page.evaluate(
        """async () => (await fetch('/api/faults', {method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({preset: 'outage', provider: 'apns'})})).status"""
    )
    assert status == 403
    assert dash_sim.control("GET", "/_sim/faults")["faults"] == []
