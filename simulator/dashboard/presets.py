"""Fault presets and the fault form: both written in the fault vocabulary (pure).

A preset is a function of provider and duration returning a fault as ``POST /_sim/faults``
takes it; the form lists, per kind, the fields the vocabulary's parser accepts
(:mod:`simulator.faults.spec` and :mod:`simulator.faults.parse` are the one home of their
meaning and validation: what the page sends goes through
:func:`~simulator.faults.parse.parse_faults` like any other fault).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.faults.spec import (
    AUTH_MODES,
    CHURN_ACTIONS,
    DISTRIBUTIONS,
    HOSTILE_BEHAVIOURS,
    KINDS,
    OUTAGE_MODES,
    PROVIDERS,
    THROTTLE_SCOPES,
)

PresetFn = Callable[[str, float], dict[str, Any]]

PRESETS: dict[str, PresetFn] = {
    "outage": lambda provider, seconds: {
        "kind": "outage",
        "provider": provider,
        "duration": seconds,
    },
    "throttle": lambda provider, seconds: {
        "kind": "throttle",
        "provider": provider,
        "scope": "provider",
        "rate": 20,
        "duration": seconds,
    },
    "latency": lambda provider, seconds: {
        "kind": "latency",
        "provider": provider,
        "distribution": "lognormal",
        "p50": "200ms",
        "p99": "1s",
        "duration": seconds,
    },
    "churn": lambda provider, seconds: {
        "kind": "token_churn",
        "provider": provider,
        "action": "reinstall",
        "rate": 2,
        "duration": seconds,
    },
}

PRESET_SECONDS = 10.0


def preset(name: str, provider: str, seconds: float = PRESET_SECONDS) -> dict[str, Any]:
    """The fault a preset stands for; KeyError for an unknown name."""
    return PRESETS[name](provider, seconds)


# A field of the form: its name as the vocabulary spells it, how the page asks for it
# (choice, duration, number, text) and, for a choice, the options.
Field = tuple[str, str, tuple[str, ...]]

COMMON_FIELDS: tuple[Field, ...] = (
    ("provider", "choice", (*PROVIDERS, "any")),
    ("start", "duration", ()),
    ("duration", "duration", ()),
    ("share", "number", ()),
    ("token", "text", ()),
    ("project", "text", ()),
)

KIND_FIELDS: dict[str, tuple[Field, ...]] = {
    "outage": (
        ("mode", "choice", OUTAGE_MODES),
        ("retry_after", "text", ()),
        ("after", "duration", ()),
    ),
    "throttle": (
        ("scope", "choice", THROTTLE_SCOPES),
        ("rate", "number", ()),
        ("burst", "number", ()),
    ),
    "latency": (
        ("distribution", "choice", DISTRIBUTIONS),
        ("delay", "duration", ()),
        ("min", "duration", ()),
        ("max", "duration", ()),
        ("p50", "duration", ()),
        ("p99", "duration", ()),
    ),
    "errors": (("probability", "number", ()),),
    "token_churn": (("action", "choice", CHURN_ACTIONS), ("rate", "number", ())),
    "auth": (
        ("mode", "choice", AUTH_MODES),
        ("apns_token_max_age", "duration", ()),
        ("oauth_token_lifetime", "duration", ()),
    ),
    "hostile_client": (
        ("behaviour", "choice", HOSTILE_BEHAVIOURS),
        ("connections", "number", ()),
    ),
}


def vocabulary() -> dict[str, Any]:
    """What the page needs to draw the preset buttons and the form."""

    def fields(items: tuple[Field, ...]) -> list[dict[str, Any]]:
        return [{"name": n, "type": t, "options": list(o)} for n, t, o in items]

    return {
        "providers": list(PROVIDERS),
        "presets": list(PRESETS),
        "preset_seconds": PRESET_SECONDS,
        "kinds": list(KINDS),
        "common": fields(COMMON_FIELDS),
        "fields": {kind: fields(KIND_FIELDS[kind]) for kind in KINDS},
    }
