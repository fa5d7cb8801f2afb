"""Declarative Web Push (Safari 18.4+) and what a browser shows for a push message: pure.

A declarative message is a JSON body ``{"web_push": 8030, "notification": {...},
"mutable"?: bool}`` that the browser displays itself, with no service worker:
``notification.title`` and ``notification.navigate`` (an http(s) URL opened on a click)
are required; ``body``, ``lang``, ``tag`` and ``icon`` / ``image`` are strings, ``dir`` is
auto | ltr | rtl, ``silent`` a boolean, ``app_badge`` a whole number (or its digits),
``timestamp`` a number, ``actions`` a list of ``{action, title, navigate?}``; ``mutable:
true`` lets the service worker's push event change the notification before it shows.

:func:`display` returns the inbox entry's ``display``: the notification the browser would
show (``kind: declarative``), or -- for any other payload, and for a declarative one that
does not parse, with ``declarative_problem`` saying why -- a push event handed to the
service worker, which must show a notification (``userVisibleOnly``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

MAGIC = 8030
DIRS = ("auto", "ltr", "rtl")
_STRINGS = ("body", "lang", "tag", "icon", "image")


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def _badge(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _actions(value: Any) -> str:
    if not isinstance(value, list):
        return "notification.actions must be a list"
    for i, act in enumerate(value):
        if not isinstance(act, dict):
            return f"notification.actions[{i}] must be an object"
        for key in ("action", "title"):
            if not isinstance(act.get(key), str) or not act[key]:
                return f"notification.actions[{i}].{key} must be a non-empty string"
        if "navigate" in act and not _is_url(act["navigate"]):
            return f"notification.actions[{i}].navigate must be an http(s) URL"
    return ""


def _optional_problem(n: dict[str, Any]) -> str:
    """The first optional member of the notification with a value of the wrong type."""
    for key in _STRINGS:
        if key in n and not isinstance(n[key], str):
            return f"notification.{key} must be a string"
    checks: dict[str, tuple[Callable[[Any], bool], str]] = {
        "dir": (lambda v: v in DIRS, "must be auto, ltr or rtl"),
        "silent": (lambda v: isinstance(v, bool), "must be true or false"),
        "app_badge": (lambda v: _badge(v) is not None, "must be a whole number"),
        "timestamp": (
            lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "must be a number (ms since the epoch)",
        ),
    }
    for key, (ok, what) in checks.items():
        if key in n and not ok(n[key]):
            return f"notification.{key} {what}"
    return _actions(n["actions"]) if "actions" in n else ""


def declarative_problem(doc: dict[str, Any]) -> str:
    """Why a message marked ``web_push: 8030`` is not a valid declarative one ("" if it is)."""
    if doc.get("web_push") != MAGIC or isinstance(doc.get("web_push"), bool):
        return "web_push must be 8030"
    n = doc.get("notification")
    if not isinstance(n, dict):
        return "notification must be an object"
    if not isinstance(n.get("title"), str) or not n["title"]:
        return "notification.title is required (a non-empty string)"
    if not _is_url(n.get("navigate")):
        return "notification.navigate is required (an http(s) URL)"
    if "mutable" in doc and not isinstance(doc["mutable"], bool):
        return "mutable must be true or false"
    return _optional_problem(n)


def display(payload: Any) -> dict[str, Any]:
    """What the browser shows for a push message whose decrypted JSON is ``payload``."""
    if isinstance(payload, dict) and "web_push" in payload:
        problem = declarative_problem(payload)
        if not problem:
            n = payload["notification"]
            shown: dict[str, Any] = {
                "kind": "declarative",
                "visible": True,
                "title": n["title"],
                "navigate": n["navigate"],
                "mutable": bool(payload.get("mutable", False)),
            }
            for key in ("body", "lang", "dir", "tag", "silent", "icon", "image", "actions"):
                if key in n:
                    shown[key] = n[key]
            if "app_badge" in n:
                shown["app_badge"] = _badge(n["app_badge"])
            if shown["mutable"]:
                shown["service_worker"] = "its push event may change this before it shows"
            return shown
        return {"kind": "push_event", "visible": True, "declarative_problem": problem}
    return {"kind": "push_event", "visible": True}
