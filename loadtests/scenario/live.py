"""A scenario's Live Activity traffic and its devices' users, read and checked.

- ``traffic.live_activities``: ``{"share": 0.2, "broadcast": 0.5, "devices": 10}``: that
  share of the app servers' sends are Live Activity traffic, of which ``broadcast`` go to a
  channel (one broadcast reaches every activity on it) and the rest update one activity
  through its token; ``devices`` APNs devices start an activity on the channel at the start
  of the load (a push-to-start through the sender), so both kinds are judged like any send;
- ``devices.open_probability``: the chance a shown notification is opened (reported to
  the sender as an ``opened`` receipt); ``devices.notifications_off``: the share of
  devices whose user turned notifications off.
"""

from __future__ import annotations

from typing import Any

from loadtests.scenario.check import Check

LIVE_KEYS = ("share", "broadcast", "devices")
USER_KEYS = ("open_probability", "notifications_off")


def live_traffic(check: Check, value: Any) -> dict[str, float]:
    """``traffic.live_activities`` ({} when the scenario has none)."""
    if value is None:
        return {}
    path = "traffic.live_activities"
    m = check.mapping(value, path, LIVE_KEYS)
    return {
        "share": check.number(m.get("share", 0.2), f"{path}.share", maximum=1),
        "broadcast": check.number(m.get("broadcast", 0.5), f"{path}.broadcast", maximum=1),
        "devices": float(
            check.integer(m.get("devices", 10), f"{path}.devices", minimum=1, maximum=10_000)
        ),
    }


def user_behaviour(check: Check, dv: dict[str, Any]) -> dict[str, float]:
    """``devices.open_probability`` and ``devices.notifications_off`` (0 unless given)."""
    return {key: check.number(dv.get(key, 0.0), f"devices.{key}", maximum=1) for key in USER_KEYS}
