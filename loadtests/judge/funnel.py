"""The notification funnel judged against ground truth (pure): sent -> delivered -> shown ->
opened.

The simulator's simulated users (``/_sim/stats`` ``device_users``) say how many delivered
notifications were shown and opened; the sender says how many ``opened`` receipts it
recorded (``pushsim_sender_receipts_total{event="opened"}``, the run's delta). The device
side reports every open it sees, so a sender that records what it is told matches the
simulator: ``open_funnel_accuracy`` is ``1 - |sender - simulator| / simulator`` (at least 0).
"""

from __future__ import annotations

from typing import Any

RECEIPTS = "pushsim_sender_receipts_total"
OPENED = RECEIPTS + '{event="opened"}'  # as the harness's Prometheus parser keys it


def _opened_delta(start: dict[str, float] | None, end: dict[str, float] | None) -> float | None:
    if end is None:
        return None
    if OPENED not in end:
        return 0.0 if end else None  # a labelled counter shows once something is counted
    return max(0.0, end[OPENED] - (start or {}).get(OPENED, 0.0))


def funnel(
    sim_stats: Any, metrics_start: dict[str, float] | None, metrics_end: dict[str, float] | None
) -> dict[str, Any]:
    """The funnel's measures from ``/_sim/stats`` and the sender's metrics at both ends."""
    users = sim_stats.get("device_users") if isinstance(sim_stats, dict) else None
    out: dict[str, Any] = {}
    if not isinstance(users, dict):
        out["open_funnel_accuracy"] = None
        out["open_funnel_accuracy__why"] = "the simulator reports no device_users in /_sim/stats"
        return out
    for key in ("delivered", "shown", "silent", "not_shown_off", "opened"):
        out[f"device_{key}"] = int(users.get(key, 0))
    opened = out["device_opened"]
    reported = _opened_delta(metrics_start, metrics_end)
    out["sender_opened"] = reported
    if reported is None:
        out["open_funnel_accuracy"] = None
        out["open_funnel_accuracy__why"] = f"the sender exposes no {RECEIPTS}"
    elif opened == 0:
        out["open_funnel_accuracy"] = None
        out["open_funnel_accuracy__why"] = (
            "no simulated user opened a notification (devices.open_probability is 0?)"
        )
    else:
        out["open_funnel_accuracy"] = round(max(0.0, 1 - abs(reported - opened) / opened), 4)
    return out
