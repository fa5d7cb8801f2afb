"""FCM topics: subscriptions and condition expressions (pure, no I/O).

A condition is FCM's small boolean language over a device's topics::

    'a' in topics && ('b' in topics || !('c' in topics))

with ``&&``, ``||``, ``!``, parentheses, single or double quotes, ``!`` binding tighter
than ``&&`` and ``&&`` tighter than ``||``, and at most five topics. :func:`parse_condition`
turns the text into a :class:`Condition` that evaluates against a device's topic set.

Subscriptions live on the device (``Device.topics``, which a reinstall clears);
:class:`TopicIndex` keeps the reverse map for fan-out and checks it lazily.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from simulator.state.devices import Device

MAX_CONDITION_TOPICS = 5
MAX_TOPICS_PER_DEVICE = 2000
TOPIC_NAME = re.compile(r"^[a-zA-Z0-9\-_.~%]{1,900}$")


class ConditionError(ValueError):
    """The condition text is not a valid FCM condition."""


@dataclass(frozen=True, slots=True)
class InTopics:
    topic: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


Node = InTopics | Not | And | Or

_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!|\(|\))|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<word>[A-Za-z_]+)|(?P<bad>\S))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        pos = m.end()
        if m.group("op") is not None:
            out.append(("op", m.group("op")))
        elif m.group("sq") is not None:
            out.append(("topic", m.group("sq")))
        elif m.group("dq") is not None:
            out.append(("topic", m.group("dq")))
        elif m.group("word") is not None:
            out.append(("word", m.group("word")))
        else:
            raise ConditionError(f"unexpected character {m.group('bad')!r} at {m.start('bad')}")
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.toks = tokens
        self.i = 0
        self.topics: list[str] = []

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ConditionError("unexpected end of condition")
        self.i += 1
        return tok

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.peek() == ("op", "||"):
            self.i += 1
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_unary()
        while self.peek() == ("op", "&&"):
            self.i += 1
            node = And(node, self.parse_unary())
        return node

    def parse_unary(self) -> Node:
        kind, val = self.take()
        if (kind, val) == ("op", "!"):
            return Not(self.parse_unary())
        if (kind, val) == ("op", "("):
            node = self.parse_or()
            if self.take() != ("op", ")"):
                raise ConditionError("expected ')'")
            return node
        if kind == "topic":
            if not TOPIC_NAME.match(val):
                raise ConditionError(f"invalid topic name {val!r}")
            if self.take() != ("word", "in") or self.take() != ("word", "topics"):
                raise ConditionError(f"expected 'in topics' after {val!r}")
            self.topics.append(val)
            if len(self.topics) > MAX_CONDITION_TOPICS:
                raise ConditionError(
                    f"at most {MAX_CONDITION_TOPICS} topics are allowed in a condition"
                )
            return InTopics(val)
        raise ConditionError(f"unexpected {val!r}")


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    root: Node
    topic_list: tuple[str, ...]

    def topics(self) -> tuple[str, ...]:
        return self.topic_list

    @property
    def has_negation(self) -> bool:
        """True when a device with none of the topics may match (``!`` somewhere)."""
        return _matches(self.root, frozenset())

    def matches(self, device_topics: set[str] | frozenset[str]) -> bool:
        return _matches(self.root, device_topics)


def _matches(node: Node, topics: set[str] | frozenset[str]) -> bool:
    if isinstance(node, InTopics):
        return node.topic in topics
    if isinstance(node, Not):
        return not _matches(node.operand, topics)
    if isinstance(node, And):
        return _matches(node.left, topics) and _matches(node.right, topics)
    return _matches(node.left, topics) or _matches(node.right, topics)


_cache: dict[str, Condition] = {}


def parse_condition(text: str) -> Condition:
    """Parse FCM condition text; raise :class:`ConditionError` when it is not valid."""
    cached = _cache.get(text)
    if cached is not None:
        return cached
    parser = _Parser(_tokens(text))
    if not parser.toks:
        raise ConditionError("empty condition")
    root = parser.parse_or()
    if parser.peek() is not None:
        raise ConditionError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    cond = Condition(text, root, tuple(parser.topics))
    if len(_cache) < 10_000:
        _cache[text] = cond
    return cond


class TopicIndex:
    """Reverse map topic -> subscribed devices, for fan-out."""

    def __init__(self) -> None:
        self._subs: dict[str, dict[str, Device]] = {}

    def subscribe(self, dev: Device, topic: str) -> str | None:
        """Subscribe; returns an Instance ID error code or None on success."""
        if not TOPIC_NAME.match(topic):
            return "INVALID_ARGUMENT"
        if topic not in dev.topics and len(dev.topics) >= MAX_TOPICS_PER_DEVICE:
            return "TOO_MANY_TOPICS"
        dev.topics.add(topic)
        self._subs.setdefault(topic, {})[dev.id] = dev
        return None

    def unsubscribe(self, dev: Device, topic: str) -> None:
        dev.topics.discard(topic)
        subs = self._subs.get(topic)
        if subs is not None:
            subs.pop(dev.id, None)
            if not subs:
                del self._subs[topic]

    def subscribers(self, topic: str, project: str) -> list[Device]:
        subs = self._subs.get(topic)
        if not subs:
            return []
        out = []
        for dev_id, dev in list(subs.items()):
            if not dev.installed or topic not in dev.topics:
                del subs[dev_id]  # reinstalled or uninstalled since it subscribed
                continue
            if dev.app == project:
                out.append(dev)
        return out

    def matching(self, cond: Condition, project: str, everyone: Iterable[Device]) -> list[Device]:
        """Devices of ``project`` that ``cond`` selects (``everyone`` is scanned with ``!``)."""
        if cond.has_negation:
            return [
                d for d in everyone if d.installed and d.app == project and cond.matches(d.topics)
            ]
        seen: dict[str, Device] = {}
        for topic in cond.topics():
            for dev in self.subscribers(topic, project):
                seen.setdefault(dev.id, dev)
        return [d for d in seen.values() if cond.matches(d.topics)]

    def topic_counts(self) -> dict[str, int]:
        return {t: len(s) for t, s in self._subs.items()}
