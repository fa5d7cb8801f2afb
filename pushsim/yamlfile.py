"""YAML with line numbers, so that an error can say ``FILE:LINE: field: expected ...``.

:func:`load` parses a document once and returns its data together with the 1-based line of
every field, keyed by field path (``load.users``, ``faults[2].window.duration``);
:func:`line_of` finds the line for a path (or its nearest written parent) and
:func:`problem` turns a parser's exception into a line and a one-line reason. Scenario files
and fault plans both read their files through these. A value PyYAML reads but cannot
build (``seed: 2020-13-45`` reads as a date) is an :class:`UnbuildableValue` naming its
field and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


class UnbuildableValue(ValueError):
    """A scalar that reads as a typed value but is not one (``2020-13-45``: month 13).

    ``path`` is the field (as in :func:`field_lines`), ``lineno`` its 1-based line, ``text``
    the value as written and ``problem`` the one-line reason :func:`problem` reports.
    """

    def __init__(self, path: str, lineno: int, text: str, kind: str, reason: str) -> None:
        self.path = path
        self.lineno = lineno
        self.text = text
        self.problem = f"{text!r} reads as {kind} but is not one ({reason}); quote it for text"
        super().__init__(f"line {lineno}: {path or 'the document'}: {self.problem}")


_KINDS = {"timestamp": "a date", "int": "an integer", "float": "a number"}


def load(text: str) -> tuple[Any, dict[str, int]]:
    """The document's data (as ``yaml.safe_load``) and its field path -> line map.

    Raises what ``yaml.safe_load`` raises -- ``yaml.YAMLError``, ``RecursionError`` (nested
    too deeply) -- or :class:`UnbuildableValue` (a ``ValueError``) for a value PyYAML
    cannot construct, such as a bad date.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        try:
            data = loader.construct_document(node) if node is not None else None
        except ValueError as exc:
            raise _unbuildable(node, exc) from exc
    finally:
        loader.dispose()
    return data, field_lines(node)


def _unbuildable(node: yaml.Node | None, exc: ValueError) -> ValueError:
    """The first scalar under ``node`` that cannot be built, as an :class:`UnbuildableValue`;
    ``exc`` itself when none can be found."""
    builder = yaml.SafeLoader("")
    pending: list[tuple[yaml.Node, str]] = [(node, "")] if node is not None else []
    while pending:
        n, path = pending.pop(0)
        if isinstance(n, yaml.ScalarNode):
            try:
                builder.construct_object(n)
            except ValueError as bad:
                kind = _KINDS.get(n.tag.rsplit(":", 1)[-1], "a typed value")
                reason = str(bad) or type(bad).__name__
                return UnbuildableValue(path, n.start_mark.line + 1, str(n.value), kind, reason)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                sub = f"{path}.{k.value}" if path else str(k.value)
                pending += [(k, sub), (v, sub)]
        elif isinstance(n, yaml.SequenceNode):
            pending += [(v, f"{path}[{i}]") for i, v in enumerate(n.value)]
    return exc


def field_lines(node: yaml.Node | None) -> dict[str, int]:
    """Field path -> 1-based line of a composed document: a mapping key's own line, an item's
    first line; the document itself is ``""``."""
    lines: dict[str, int] = {}

    def walk(n: yaml.Node, path: str) -> None:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                sub = f"{path}.{k.value}" if path else str(k.value)
                lines[sub] = k.start_mark.line + 1
                walk(v, sub)
                lines[sub] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, f"{path}[{i}]")

    if node is not None:
        walk(node, "")
    return lines


def line_of(lines: Mapping[str, int], path: str) -> int | None:
    """The line of ``path``, else of its nearest parent that was written (``a.b[2].c`` tries
    ``a.b[2]``, ``a.b``, ``a``, then the document), else None."""
    probe = path
    while True:
        line = lines.get(probe)
        if line is not None or not probe:
            return line
        probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]


def problem(exc: BaseException) -> tuple[int | None, str]:
    """Where a YAML (or JSON) parser stopped and why, in one line (PyYAML's own text spans
    several, with the offending source quoted)."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else getattr(exc, "lineno", None)
    text = getattr(exc, "problem", None) or getattr(exc, "msg", None) or str(exc)
    return line, (text.splitlines() or [""])[0]
