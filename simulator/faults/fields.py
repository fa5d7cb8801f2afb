"""Reading a fault's fields: durations, bounded numbers, choices and strings, each with an
error that names the field path, its line when known and what was expected."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pushsim import yamlfile
from simulator.faults.spec import FaultSpecError

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float | None:
    """Seconds from ``5``, ``0.25``, ``"250ms"``, ``"5s"``, ``"1m30s"``; None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "")
    if not text:
        return None
    try:
        plain = float(text)
    except ValueError:
        pass
    else:
        return plain if math.isfinite(plain) and plain >= 0 else None
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


class Reader:
    """Field access with errors that say where and what."""

    def __init__(self, source: str, lines: Mapping[str, int] | None) -> None:
        self.source = source
        self.lines = lines or {}

    def fail(self, field: str, message: str) -> FaultSpecError:
        return FaultSpecError(self.source, field, message, yamlfile.line_of(self.lines, field))

    def duration(
        self, obj: Mapping[str, Any], key: str, path: str, *, positive: bool = False
    ) -> float | None:
        if key not in obj or obj[key] is None:
            return None
        value = parse_duration(obj[key])
        if value is None or (positive and value <= 0):
            raise self.fail(
                f"{path}.{key}",
                f"expected a {'positive ' if positive else ''}duration such as 250ms, 5s, 1m "
                f"or a number of seconds, got {obj[key]!r}",
            )
        return value

    def number(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        *,
        low: float,
        high: float | None = None,
        low_open: bool = False,
    ) -> float | None:
        if key not in obj or obj[key] is None:
            return None
        value = obj[key]
        ok = (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
        if ok:
            ok = (value > low if low_open else value >= low) and (high is None or value <= high)
        if not ok:
            bound = f"{'>' if low_open else '>='} {low:g}" + (
                f" and <= {high:g}" if high is not None else ""
            )
            raise self.fail(f"{path}.{key}", f"expected a number {bound}, got {value!r}")
        return float(value)

    def choice(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        options: tuple[str, ...],
        default: str | None,
    ) -> str:
        value = obj.get(key, default)
        if value not in options:
            got = "nothing" if value is None else repr(value)
            raise self.fail(f"{path}.{key}", f"expected one of {', '.join(options)}, got {got}")
        return str(value)

    def string(self, obj: Mapping[str, Any], key: str, path: str) -> str | None:
        if key not in obj or obj[key] is None:
            return None
        value = obj[key]
        if not isinstance(value, str) or not value:
            raise self.fail(f"{path}.{key}", f"expected a non-empty string, got {value!r}")
        return value
