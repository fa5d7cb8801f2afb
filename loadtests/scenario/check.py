"""Checking a scenario's fields: each check returns the value or raises a
:class:`ScenarioError` naming the file, the field's line and the field, and saying what was
expected."""

from __future__ import annotations

import re
from typing import Any

from pushsim import yamlfile


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with where and why."""

    def __init__(self, source: str, line: int | None, field_path: str, message: str) -> None:
        self.source = source
        self.line = line
        self.field = field_path
        self.message = message
        where = f"{source}:{line}" if line else source
        prefix = f"{field_path}: " if field_path else ""
        super().__init__(f"{where}: {prefix}{message}")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


class Check:
    def __init__(self, source: str, lines: dict[str, int]) -> None:
        self.source = source
        self.lines = lines

    def fail(self, path: str, message: str) -> ScenarioError:
        return ScenarioError(self.source, yamlfile.line_of(self.lines, path), path, message)

    def mapping(self, data: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise self.fail(path, f"expected a mapping, got {show(data)}")
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"{path}.{key}" if path else str(key),
                    f"unknown field; expected one of {', '.join(allowed)}",
                )
        return data

    def duration(self, value: Any, path: str, *, minimum: float = 0.0) -> float:
        seconds: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str):
            m = _DURATION.match(value)
            if m:
                unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2) or "s"]
                seconds = float(m.group(1)) * unit
        if seconds is None or seconds < minimum:
            raise self.fail(
                path,
                "expected a duration such as 30s, 2m or 500ms "
                f"(at least {minimum:g}s), got {show(value)}",
            )
        return seconds

    def integer(self, value: Any, path: str, *, minimum: int = 0, maximum: int = 10_000_000) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            what = f"an integer from {minimum} to {maximum}"
            if minimum == 1:  # over the maximum, a positive integer is not what was wrong
                too_big = isinstance(value, int) and not isinstance(value, bool) and value > 1
                what = f"a positive integer up to {maximum}" if too_big else "a positive integer"
            raise self.fail(path, f"expected {what}, got {show(value)}")
        return value

    def number(
        self, value: Any, path: str, *, minimum: float = 0.0, maximum: float | None = None
    ) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and (value < minimum or (maximum is not None and value > maximum)):
            ok = False
        if not ok:
            rng = (
                f"from {minimum:g} to {maximum:g}"
                if maximum is not None
                else f"at least {minimum:g}"
            )
            raise self.fail(path, f"expected a number {rng}, got {show(value)}")
        return float(value)

    def weights(
        self, value: Any, path: str, keys: tuple[str, ...], default: dict[str, float]
    ) -> dict[str, float]:
        if value is None:
            return dict(default)
        data = self.mapping(value, path, keys)
        out = {k: self.number(v, f"{path}.{k}") for k, v in data.items()}
        if sum(out.values()) <= 0:
            raise self.fail(path, "expected at least one weight above 0")
        return out


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
