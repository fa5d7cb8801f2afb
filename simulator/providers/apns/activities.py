"""Live Activities on the simulated devices (iOS 17.2 / 18): push-to-start tokens, activity
push tokens and each activity's lifecycle, as pure state.

Tokens (hex, longer than a device token, as ActivityKit's are):

- a **push-to-start token** per device and app, minted when first asked for
  (``POST /_sim/apns/devices/{id}/push-to-start``); iOS re-issues it at any time, modelled
  as a seeded draw after each start it receives (``reissue_probability``): the old token
  then answers 410 ExpiredToken and the new one appears in the Live Activity feed;
- an **activity push token** per activity, minted when the activity starts (by a
  push-to-start notification, or by the app through the control API), announced in the feed.

What a delivered ``aps`` does is decided here, at delivery, as the device would: ``event``
``start`` (to a push-to-start token, with ``attributes-type``, ``attributes`` and
``content-state``), ``update`` (``content-state``) or ``end``; an integer ``timestamp``, and
an update older than the activity's last one is dropped; ``stale-date`` and
``dismissal-date`` (epoch seconds); ``input-push-channel`` on a start subscribes the new
activity to a broadcast channel, ``input-push-token: 1`` asks for its push token. APNs
itself accepts what a device then ignores, so each outcome is recorded on the inbox entry
(``activity``: the activity, the event, ``applied`` or ``ignored`` with why).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOKEN_BYTES = 80  # 160 hex digits
EVENTS = ("start", "update", "end")
ENDED_KEPT_S = 4 * 3600.0  # iOS keeps an ended activity on screen up to four hours


@dataclass(slots=True)
class Activity:
    id: str
    device_id: str
    token: str
    attributes_type: str
    attributes: dict[str, Any]
    content_state: dict[str, Any]
    started_at: float
    started_by: str  # "push" | "app"
    channel: str | None = None
    state: str = "active"  # active | ended
    last_timestamp: int = 0
    stale_date: int | None = None
    dismiss_at: float | None = None
    updates: int = 0

    def dismissed(self, now: float) -> bool:
        return self.dismiss_at is not None and now >= self.dismiss_at

    def view(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "device_id": self.device_id,
            "token": self.token,
            "attributes_type": self.attributes_type,
            "attributes": self.attributes,
            "content_state": self.content_state,
            "state": "dismissed" if self.dismissed(now) else self.state,
            "started_at": self.started_at,
            "started_by": self.started_by,
            "channel_id": self.channel,
            "last_timestamp": self.last_timestamp,
            "stale_date": self.stale_date,
            "stale": self.stale_date is not None and now >= self.stale_date,
            "dismiss_at": self.dismiss_at,
            "updates": self.updates,
        }


@dataclass(frozen=True, slots=True)
class TokenOwner:
    kind: str  # "push_to_start" | "activity"
    device_id: str
    generation: int  # the device's install generation the token belongs to
    activity_id: str | None = None


@dataclass(slots=True)
class LiveActivities:
    """Every device's Live Activity tokens and activities (only devices that have any)."""

    rng: random.Random
    reissue_probability: float = 0.1
    subscribe: Callable[[str, str], bool] | None = None  # (device id, channel id) -> known
    tokens: dict[str, TokenOwner] = field(default_factory=dict)
    dead: dict[str, str] = field(default_factory=dict)  # token -> why it stopped working
    activities: dict[str, Activity] = field(default_factory=dict)
    _start_token: dict[str, str] = field(default_factory=dict)  # device id -> push-to-start
    _of_device: dict[str, list[str]] = field(default_factory=dict)
    feed: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100_000))
    _seq: int = 0
    _next_activity: int = 1

    # -- tokens ------------------------------------------------------------------------------

    def _mint(self, owner: TokenOwner) -> str:
        while True:
            token = self.rng.randbytes(TOKEN_BYTES).hex()
            if token not in self.tokens and token not in self.dead:
                self.tokens[token] = owner
                return token

    def _announce(self, event: str, now: float, **fields: Any) -> None:
        self._seq += 1
        self.feed.append({"seq": self._seq, "at": now, "event": event, **fields})

    def feed_since(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        return [e for e in self.feed if e["seq"] > seq][:limit]

    def push_to_start_token(self, device_id: str, generation: int, now: float) -> str:
        """The device's current push-to-start token (minted on first request)."""
        token = self._start_token.get(device_id)
        if token is not None and self.tokens[token].generation == generation:
            return token
        if token is not None:
            self._kill(token, "reinstalled")
        token = self._mint(TokenOwner("push_to_start", device_id, generation))
        self._start_token[device_id] = token
        self._announce("push_to_start_token", now, device_id=device_id, token=token)
        return token

    def reissue(self, device_id: str, now: float) -> str | None:
        """iOS hands the app a new push-to-start token; the old one stops working."""
        old = self._start_token.get(device_id)
        if old is None:
            return None
        owner = self.tokens[old]
        self._kill(old, "reissued")
        token = self._mint(TokenOwner("push_to_start", device_id, owner.generation))
        self._start_token[device_id] = token
        self._announce("push_to_start_token", now, device_id=device_id, token=token, old=old)
        return token

    def _kill(self, token: str, why: str) -> None:
        if self.tokens.pop(token, None) is not None:
            self.dead[token] = why

    def lookup(self, token: str, now: float) -> TokenOwner | str | None:
        """The live token's owner, why a once-valid token is dead, or None (never issued)."""
        owner = self.tokens.get(token)
        if owner is not None and owner.activity_id is not None:
            act = self.activities.get(owner.activity_id)
            if act is None or act.dismissed(now):
                self._kill(token, "dismissed")
                return "dismissed"
        return owner if owner is not None else self.dead.get(token)

    # -- activities --------------------------------------------------------------------------

    def start(
        self,
        device_id: str,
        generation: int,
        body: dict[str, Any],
        now: float,
        started_by: str = "app",
    ) -> Activity:
        """A new activity (``body``: ``attributes-type``, ``attributes``, ``content-state``,
        optional ``input-push-channel``), with its push token announced in the feed."""
        aid = f"la-{self._next_activity}"
        self._next_activity += 1
        owner = TokenOwner("activity", device_id, generation, aid)
        act = Activity(
            aid,
            device_id,
            self._mint(owner),
            str(body["attributes-type"]),
            dict(body["attributes"]),
            dict(body["content-state"]),
            now,
            started_by,
        )
        act.last_timestamp = _int(body.get("timestamp")) or 0
        act.stale_date = _int(body.get("stale-date"))
        channel = body.get("input-push-channel")
        if (
            isinstance(channel, str)
            and self.subscribe is not None
            and self.subscribe(device_id, channel)
        ):
            act.channel = channel
        self.activities[aid] = act
        self._of_device.setdefault(device_id, []).append(aid)
        self._announce(
            "activity_started",
            now,
            device_id=device_id,
            activity_id=aid,
            token=act.token,
            attributes_type=act.attributes_type,
            channel_id=act.channel,
            started_by=started_by,
        )
        return act

    def of_device(self, device_id: str) -> list[Activity]:
        return [self.activities[a] for a in self._of_device.get(device_id, ())]

    # -- what a delivered aps does -------------------------------------------------------------

    def apply_push(self, owner: TokenOwner, aps: Any, now: float) -> dict[str, Any]:
        """A notification to a push-to-start or activity token reached the device."""
        event, why = _event_problem(aps)
        if why:
            return {"event": event, "ignored": why}
        if event == "start":
            if owner.kind != "push_to_start":
                return {"event": event, "ignored": "start is sent to a push-to-start token"}
            why = start_problem(aps)
            if why:
                return {"event": event, "ignored": why}
            new = self.start(owner.device_id, owner.generation, aps, now, started_by="push")
            if self.rng.random() < self.reissue_probability:
                self.reissue(owner.device_id, now)
            return {"event": event, "activity_id": new.id, "applied": True, "state": new.state}
        act = self.activities.get(owner.activity_id or "")
        if owner.kind != "activity" or act is None:
            return {"event": event, "ignored": f"{event} is sent to an activity's push token"}
        return self._change(act, event, aps, now)

    def apply_broadcast(self, device_id: str, channel: str, aps: Any, now: float) -> dict[str, Any]:
        """A broadcast on ``channel`` reached the device: it updates (or ends) every activity
        of the device on that channel."""
        event, why = _event_problem(aps)
        if why:
            return {"event": event, "ignored": why}
        if event == "start":
            return {"event": event, "ignored": "a broadcast cannot start an activity"}
        acts = [a for a in self.of_device(device_id) if a.channel == channel]
        if not acts:
            return {"event": event, "ignored": "no activity of this device is on the channel"}
        results = [self._change(a, event, aps, now) for a in acts]
        return results[0] if len(results) == 1 else {"event": event, "activities": results}

    def _change(self, act: Activity, event: str, aps: dict[str, Any], now: float) -> dict[str, Any]:
        out: dict[str, Any] = {"event": event, "activity_id": act.id}
        why = _change_problem(act, event, aps, now)
        if why:
            return {**out, "ignored": why}
        ts = _int(aps.get("timestamp"))
        assert ts is not None
        act.last_timestamp = ts
        state = aps.get("content-state")
        if isinstance(state, dict):
            act.content_state = dict(state)
        stale = _int(aps.get("stale-date"))
        if stale is not None:
            act.stale_date = stale
        act.updates += 1
        if event == "end":
            act.state = "ended"
            dismissal = _int(aps.get("dismissal-date"))
            act.dismiss_at = float(dismissal) if dismissal is not None else now + ENDED_KEPT_S
            self._announce("activity_ended", now, device_id=act.device_id, activity_id=act.id)
        return {**out, "applied": True, "state": "dismissed" if act.dismissed(now) else act.state}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _event_problem(aps: Any) -> tuple[str, str]:
    """(the event, why the device ignores it: empty if it does not); event "" if unknown."""
    if not isinstance(aps, dict):
        return "", "no aps dictionary"
    event = aps.get("event")
    if not isinstance(event, str) or event not in EVENTS:
        return "", "aps.event must be start, update or end"
    if _int(aps.get("timestamp")) is None:
        return event, "aps.timestamp (epoch seconds) is required"
    for key in ("stale-date", "dismissal-date"):
        if key in aps and _int(aps[key]) is None:
            return event, f"aps.{key} must be epoch seconds"
    return event, ""


def start_problem(aps: dict[str, Any]) -> str:
    kind = aps.get("attributes-type")
    if not isinstance(kind, str) or not kind:
        return "a start needs aps.attributes-type"
    if not isinstance(aps.get("attributes"), dict):
        return "a start needs aps.attributes (a dictionary)"
    if not isinstance(aps.get("content-state"), dict):
        return "a start needs aps.content-state (a dictionary)"
    channel = aps.get("input-push-channel")
    if channel is not None and not isinstance(channel, str):
        return "aps.input-push-channel must be a channel id"
    return ""


def _change_problem(act: Activity, event: str, aps: dict[str, Any], now: float) -> str:
    if act.state == "ended":
        return "the activity has ended"
    if event == "update" and not isinstance(aps.get("content-state"), dict):
        return "an update needs aps.content-state (a dictionary)"
    if "content-state" in aps and not isinstance(aps["content-state"], dict):
        return "aps.content-state must be a dictionary"
    ts = _int(aps.get("timestamp"))
    if ts is not None and ts < act.last_timestamp:
        return "older than the activity's last update (aps.timestamp)"
    return ""
