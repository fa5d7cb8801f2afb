"""What an Android device shows for a delivered FCM message: pure.

A message with ``notification`` is shown by the system tray (while the app is in the
background, as FCM's display messages are); a data-only message goes to the app and shows
nothing by itself.
"""

from __future__ import annotations

from typing import Any

from simulator.state.devices import Device


def interpret(dev: Device, entry: dict[str, Any]) -> None:
    if dev.provider != "fcm":
        return
    note = entry.get("notification")
    shown: dict[str, Any] = {"kind": "notification" if note else "data", "visible": bool(note)}
    if isinstance(note, dict):
        shown.update({k: note[k] for k in ("title", "body", "image") if k in note})
    entry["display"] = shown
