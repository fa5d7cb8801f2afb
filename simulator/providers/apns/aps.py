"""What an iOS device does with a delivered notification's ``aps`` dictionary, as pure
functions.

APNs delivers what it accepted; the device decides how it looks. :func:`display` reads the
``aps`` members the way iOS does and returns the record the inbox shows under ``display``:

- ``kind``: alert, sound, badge, background (``content-available: 1`` and nothing to show)
  or the push type (voip, location, ...); ``visible``: whether anything is shown;
- ``interruption_level``: passive, active (the default), time-sensitive or critical; a
  critical one from an app without the Critical Alerts entitlement shows as active, and so
  does an unknown level;
- ``sound``: a name, or the critical dictionary (``critical`` 0/1, ``name``, ``volume``
  0-1; critical only with the entitlement);
- ``relevance_score`` (0-1), ``thread_id``, ``target_content_id``;
- ``service_extension``: ``mutable-content: 1`` on an alert (a rich notification: the
  app's notification service extension would run);
- ``problems``: every member iOS would ignore or downgrade, and why.
"""

from __future__ import annotations

from typing import Any

LEVELS = ("passive", "active", "time-sensitive", "critical")
SILENT_PUSH_TYPES = frozenset(
    {"background", "voip", "location", "complication", "fileprovider", "mdm", "pushtotalk"}
)
_NO_ENTITLEMENT = "without the app's Critical Alerts entitlement"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _level(aps: dict[str, Any], critical_ok: bool, out: dict[str, Any]) -> None:
    asked = aps.get("interruption-level", "active")
    level = asked if asked in LEVELS else "active"
    if level != asked:
        out["problems"].append(f"interruption-level {asked!r} is not one of {', '.join(LEVELS)}")
    if level == "critical" and not critical_ok:
        out["problems"].append(f"interruption-level critical {_NO_ENTITLEMENT}: shown as active")
        level = "active"
    out["interruption_level"] = level
    if asked != level:
        out["requested_level"] = asked


def _critical_sound(sound: dict[str, Any], critical_ok: bool, out: dict[str, Any]) -> None:
    problems = out["problems"]
    name = sound.get("name")
    if not isinstance(name, str) or not name:
        problems.append("sound.name is required in a sound dictionary")
    critical = sound.get("critical", 0)
    if critical not in (0, 1) or isinstance(critical, bool):
        problems.append("sound.critical must be 0 or 1")
        critical = 0
    volume = sound.get("volume", 1.0)
    if not _number(volume) or not 0.0 <= volume <= 1.0:
        problems.append("sound.volume must be a number from 0 to 1")
        volume = 1.0
    if critical == 1 and not critical_ok:
        problems.append(f"a critical sound {_NO_ENTITLEMENT}: played as a normal sound")
        critical = 0
    out["sound"] = {"name": name, "critical": critical == 1, "volume": float(volume)}


def _sound(aps: dict[str, Any], critical_ok: bool, out: dict[str, Any]) -> None:
    sound = aps.get("sound")
    if sound is None:
        return
    if isinstance(sound, str):
        out["sound"] = {"name": sound, "critical": False}
    elif isinstance(sound, dict):
        _critical_sound(sound, critical_ok, out)
    else:
        out["problems"].append("sound must be a name or a dictionary")


def _relevance(aps: dict[str, Any], out: dict[str, Any]) -> None:
    if "relevance-score" not in aps:
        return
    score = aps["relevance-score"]
    if _number(score) and 0.0 <= score <= 1.0:
        out["relevance_score"] = float(score)
    else:
        out["problems"].append("relevance-score must be a number from 0 to 1")


def _strings(aps: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("thread-id", "target-content-id", "category"):
        if key in aps:
            if isinstance(aps[key], str):
                out[key.replace("-", "_")] = aps[key]
            else:
                out["problems"].append(f"{key} must be a string")


def _alert_present(alert: Any) -> bool:
    if isinstance(alert, str):
        return bool(alert)
    if not isinstance(alert, dict):
        return False
    get = alert.get
    return bool(
        get("title") or get("body") or get("subtitle") or get("loc-key") or get("title-loc-key")
    )


def _kind(aps: dict[str, Any], push_type: str, out: dict[str, Any]) -> None:
    alert = _alert_present(aps.get("alert"))
    if "alert" in aps and not alert:
        out["problems"].append("alert has nothing to show (no title, subtitle or body)")
    if push_type in SILENT_PUSH_TYPES and push_type != "background":
        kind = push_type
    elif alert:
        kind = "alert"
    elif "sound" in out:
        kind = "sound"
    elif "badge" in aps:
        kind = "badge"
    else:
        kind = "background"
    out["kind"] = kind
    out["visible"] = kind == "alert"
    mutable = aps.get("mutable-content")
    if mutable == 1:
        if kind == "alert":
            out["service_extension"] = True
        else:
            out["problems"].append("mutable-content needs an alert: no service extension runs")
    badge = aps.get("badge", 0)
    if not isinstance(badge, int) or isinstance(badge, bool):
        out["problems"].append("badge must be a whole number")


_PLAIN = frozenset({"alert", "content-available"})  # the common case: nothing else to read


def display(aps: Any, push_type: str, critical_ok: bool) -> dict[str, Any]:
    """The ``display`` record of a delivered notification (see the module docstring)."""
    out: dict[str, Any] = {"problems": []}
    if not isinstance(aps, dict):
        out.update(kind=push_type, visible=False)
        return out
    if _PLAIN.issuperset(aps) and push_type in ("alert", "background"):
        shows = _alert_present(aps.get("alert"))
        if "alert" in aps and not shows:
            out["problems"].append("alert has nothing to show (no title, subtitle or body)")
        kind = "alert" if shows else "background"
        out.update(interruption_level="active", kind=kind, visible=shows)
        return out
    _level(aps, critical_ok, out)
    _sound(aps, critical_ok, out)
    _relevance(aps, out)
    _strings(aps, out)
    _kind(aps, push_type, out)
    return out


def is_background(entry: dict[str, Any]) -> bool:
    """A background (silent) push: iOS budgets these per device."""
    aps = entry.get("payload", {}).get("aps") if isinstance(entry.get("payload"), dict) else None
    if entry.get("push_type") == "background":
        return True
    return (
        isinstance(aps, dict)
        and aps.get("content-available") == 1
        and entry.get("push_type") in (None, "alert")
        and not _alert_present(aps.get("alert"))
        and "sound" not in aps
        and "badge" not in aps
    )
