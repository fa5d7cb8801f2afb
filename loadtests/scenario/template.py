"""Request templates (pure): the shape of a sender's API, filled per request.

A template is JSON with ``{name}`` placeholders. A string that is exactly ``"{name}"``
takes the value itself (an object, a number, a list) and is dropped when the value is
None; other strings are formatted. This lets a scenario describe someone else's API
(``target:`` section) while the harness keeps planting ``correlation_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        out = {}
        for k, v in template.items():
            r = render(v, values)
            if r is not None:
                out[k] = r
        return out
    if isinstance(template, list):
        return [r for v in template if (r := render(v, values)) is not None]
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template[1:-1] in values:
            return values[template[1:-1]]
        try:
            return template.format_map(_Strict(values))
        except (KeyError, ValueError, IndexError):
            return template
    return template


def registration_values(user_id: str, dev: Mapping[str, Any]) -> dict[str, Any]:
    """What a registration template is filled with for one device (a token, or for Web Push
    a subscription)."""
    webpush = dev["provider"] == "webpush"
    return {
        "user_id": user_id,
        "provider": dev["provider"],
        "token": None if webpush else dev["token"],
        "subscription": dev.get("subscription") if webpush else None,
        "device_id": dev["device_id"],
    }


class _Strict(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)
