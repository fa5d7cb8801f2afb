"""A run's progress, as ``pushsim run`` reports it to the simulator for the dashboard to show.

The harness posts a progress document to the control API, ``POST /_sim/run/progress``::

    {"scenario": "smoke", "phase": "load", "elapsed_s": 12.0, "duration_s": 30,
     "users": 10, "sent": 240, "delivered": 236,
     "objectives": [{"name": "min_throughput_per_s", "op": ">=", "bound": 5,
                     "value": 20.0, "unit": "/s"}]}

``value`` is the objective's running value (null while it cannot be known before the end);
the simulator adds ``ok`` per objective and ``received_at``. ``GET /_sim/run/progress``
reads the last one back. :func:`progress_document` builds one (pure).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pushsim.clock import Clock

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda value, bound: value >= bound,
    "<=": lambda value, bound: value <= bound,
}
PHASES = ("starting", "load", "drain", "judging", "done")


class ProgressError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Objective:
    """An objective as the page shows it: its bound and, while the run goes, its value."""

    name: str
    op: str  # ">=" or "<="
    bound: float
    value: float | None
    unit: str = ""


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _objective(item: Any, path: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ProgressError(path, "expected an object with name, op, bound and value")
    name, op = item.get("name"), item.get("op")
    bound: Any = item.get("bound")
    value: Any = item.get("value")
    if not isinstance(name, str) or not name:
        raise ProgressError(f"{path}.name", "expected a non-empty string")
    if op not in OPS:
        raise ProgressError(f"{path}.op", f"expected one of {', '.join(OPS)}, got {op!r}")
    if not _number(bound):
        raise ProgressError(f"{path}.bound", f"expected a number, got {bound!r}")
    if value is not None and not _number(value):
        raise ProgressError(f"{path}.value", f"expected a number or null, got {value!r}")
    unit = item.get("unit", "")
    return {
        "name": name,
        "op": op,
        "bound": bound,
        "value": value,
        "unit": unit if isinstance(unit, str) else "",
        "ok": None if value is None else OPS[str(op)](float(value), float(bound)),
    }


def validate(doc: Any, received_at: float) -> dict[str, Any]:
    """The document as the dashboard keeps it, or :class:`ProgressError` naming the field."""
    if not isinstance(doc, dict):
        raise ProgressError("progress", "expected a JSON object")
    out: dict[str, Any] = {"received_at": received_at}
    scenario = doc.get("scenario")
    if not isinstance(scenario, str) or not scenario:
        raise ProgressError("scenario", "expected the scenario's name")
    out["scenario"] = scenario
    phase = doc.get("phase", "load")
    if phase not in PHASES:
        raise ProgressError("phase", f"expected one of {', '.join(PHASES)}, got {phase!r}")
    out["phase"] = phase
    for key in ("elapsed_s", "duration_s", "users", "sent", "delivered"):
        value = doc.get(key)
        if value is not None and not _number(value):
            raise ProgressError(key, f"expected a number, got {value!r}")
        out[key] = value
    objectives = doc.get("objectives", [])
    if not isinstance(objectives, list):
        raise ProgressError("objectives", "expected a list")
    out["objectives"] = [_objective(o, f"objectives[{i}]") for i, o in enumerate(objectives)]
    return out


def running_measures(elapsed_s: float, sent: int, delivered: int) -> dict[str, float]:
    """The measures a run can know while the load goes (the rest wait for the end)."""
    out: dict[str, float] = {}
    if elapsed_s > 0:
        out["throughput_per_s"] = round(sent / elapsed_s, 3)
    if sent > 0:
        out["delivered_ratio"] = round(min(1.0, delivered / sent), 4)
    return out


def valued(
    objectives: Iterable[tuple[str, str, float, str, str]], measures: Mapping[str, float | None]
) -> list[Objective]:
    """Objectives as ``(name, op, bound, unit, measure)``, each valued from ``measures``
    (None where the measure is not known yet)."""
    return [
        Objective(name, op, bound, measures.get(measure), unit)
        for name, op, bound, unit, measure in objectives
    ]


def progress_document(
    scenario: str,
    phase: str,
    elapsed_s: float,
    duration_s: float,
    objectives: Iterable[Objective],
    **counts: float,
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "phase": phase,
        "elapsed_s": round(elapsed_s, 3),
        "duration_s": duration_s,
        **counts,
        "objectives": [
            {"name": o.name, "op": o.op, "bound": o.bound, "value": o.value, "unit": o.unit}
            for o in objectives
        ],
    }


class RunProgress:
    """The last progress document posted (None before any)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.doc: dict[str, Any] | None = None

    def post(self, doc: Any) -> dict[str, Any]:
        self.doc = validate(doc, round(self.clock.time(), 3))
        return self.doc

    def routes(self, app: web.Application) -> None:
        """Register ``POST`` and ``GET /_sim/run/progress`` on the control API."""

        async def post(request: web.Request) -> web.Response:
            try:
                doc = self.post(json.loads(await request.read() or b"null"))
            except (ValueError, RecursionError) as exc:
                field = exc.field if isinstance(exc, ProgressError) else None
                body = {"error": str(exc)} | ({"field": field} if field else {})
                return web.json_response(body, status=400)
            return web.json_response(doc)

        async def get(request: web.Request) -> web.Response:
            return web.json_response(self.doc)

        app.router.add_post("/_sim/run/progress", post)
        app.router.add_get("/_sim/run/progress", get)
