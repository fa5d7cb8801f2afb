"""What every config source shares: its error, reading a file, and the value checks.

A check's message says what was expected and what was found; the caller prefixes where
(the file and the field), so every complaint is one line naming all three.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration that cannot be used: one line naming where and what was expected."""


class FileProblem(ValueError):
    """A loader's complaint; the caller prefixes where it came from (file and field)."""


def read_file(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileProblem(f"no such file '{shown}'") from None
    except IsADirectoryError:
        raise FileProblem(f"expected a file, '{shown}' is a directory") from None
    except OSError as exc:
        raise FileProblem(f"cannot read '{shown}': {exc.strerror or exc}") from None


def json_object(path: Path, shown: str) -> dict[str, Any]:
    try:
        doc = json.loads(read_file(path, shown))
    except (ValueError, RecursionError) as exc:
        raise FileProblem(f"'{shown}': expected a JSON object: {first_line(exc)}") from None
    if not isinstance(doc, dict):
        raise FileProblem(f"'{shown}': expected a JSON object, got {kind(doc)}")
    return doc


def url_problem(value: Any, *, allow_path: bool = False) -> str:
    if not isinstance(value, str) or not value:
        return "expected a URL (https://host[:port])"
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        return f"expected a URL with a port 0-65535, got {value!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL, got {value!r}"
    if not allow_path and (parts.path not in ("", "/") or parts.query or parts.fragment):
        return f"expected scheme://host[:port] with no path, got {value!r}"
    return ""


def subject_problem(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("mailto:", "https://")):
        return f"expected a mailto: or https: URI, got {value!r}"
    return ""


def first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


def kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)
