"""A config file's section, read field by field: each read checks the value's type and
range, and every complaint names ``file: section.field`` and what was expected.

A :data:`Validator` reads one field (given the values checked before it); the small ones
here serve every section.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sender.config.checks import ConfigError, FileProblem, kind, url_problem
from sender.config.credentials import check_ca_file


class Section:
    """Typed reads from one mapping of the file; errors name ``file: section.field``."""

    def __init__(
        self, source: str, base: Path, name: str, data: dict[str, Any], fields: tuple[str, ...]
    ) -> None:
        self.source = source
        self.base = base
        self.name = name
        self.data = data
        for key in data:
            if key not in fields:
                raise self.fail(str(key), f"unknown field (expected one of {', '.join(fields)})")

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.name}.{key}: {message}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {kind(value)}")
        return value

    def url(self, key: str, *, required: bool = False) -> str | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        problem = url_problem(value)
        if problem:
            raise self.fail(key, problem)
        return value.rstrip("/")

    def path(self, key: str, *, required: bool = False) -> tuple[Path, str] | None:
        shown = self.string(key, required=required)
        if shown is None:
            return None
        p = Path(shown).expanduser()
        return (p if p.is_absolute() else self.base / p), shown

    def load(self, key: str, loader: Callable[[Path, str], Any], *, required: bool) -> Any:
        where = self.path(key, required=required)
        if where is None:
            return None
        path, shown = where
        try:
            return loader(path, shown)
        except FileProblem as exc:
            message = str(exc)
            if message.startswith("no such file") and not Path(shown).expanduser().is_absolute():
                message += f" in {self.base}"  # relative paths count from the file's directory
            raise self.fail(key, message) from None

    def number(self, key: str, *, low: float, integer: bool = False, above: bool = False) -> Any:
        """A number ``>= low`` (``> low`` when ``above``), or None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and integer and not (isinstance(value, int) or float(value).is_integer()):
            ok = False
        if not ok or not math.isfinite(value) or value < low or (above and value == low):
            what = "a whole number" if integer else "a number"
            raise self.fail(key, f"expected {what} {'>' if above else '>='} {low:g}, got {value!r}")
        return int(value) if integer else float(value)

    def choice(self, key: str, options: tuple[str, ...]) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if value not in options:
            raise self.fail(key, f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    def ca_file(self, key: str) -> str | None:
        where = self.path(key)
        if where is None:
            return None
        try:
            check_ca_file(*where)
        except FileProblem as exc:
            raise self.fail(key, str(exc)) from None
        return str(where[0])


# (section, field, the values checked so far) -> the field's value
Validator = Callable[[Section, str, dict[str, Any]], Any]


def url_field(*, required: bool = False) -> Validator:
    return lambda s, key, _: s.url(key, required=required)


def number_field(*, low: float, integer: bool = False, above: bool = False) -> Validator:
    return lambda s, key, _: s.number(key, low=low, integer=integer, above=above)


def file_field(loader: Callable[[Path, str], Any]) -> Validator:
    return lambda s, key, _: s.load(key, loader, required=True)


def ca_file_field(s: Section, key: str, _: dict[str, Any]) -> str | None:
    return s.ca_file(key)
