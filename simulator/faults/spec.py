"""Fault definitions: a scenario file's ``faults:`` section and the body of ``POST /_sim/faults``.

Format reference
================

A fault plan is a list of faults. Each fault is a mapping::

    - id: apns-down         # optional; default f1, f2, ... (unique in the plan)
      kind: outage          # outage | throttle | latency | errors | token_churn | auth
      provider: apns        # apns | fcm | webpush | any  (apns covers production and sandbox)
      start: 10s            # when the window opens (alias: at); default 0
      duration: 20s         # how long it stays open (or end: 30s); default: until cleared
      share: 0.1            # optional: only this share of devices (stable for a seed)
      token: "<token>"      # optional: only this device token (APNs hex, FCM token, Web Push id)
      project: my-project   # optional: only this project (FCM project id, APNs apns-topic)

The window may also be written as a mapping: ``window: {start: 10s, duration: 20s}``.
Times are seconds (``5``, ``0.25``) or strings with units: ``250ms``, ``5s``, ``2m``,
``1h``, ``1m30s``. In a scenario file they count from the simulator's start; through the
control API from the moment of the POST, unless the fault says ``anchor: run``.

Kinds and their own fields:

``outage``
    ``mode``: ``status`` (default: 503 with the provider's body: APNs ServiceUnavailable,
    FCM UNAVAILABLE, Web Push plain 503), ``refused`` (the listener is closed for the window
    and its live connections dropped; provider-wide only), ``reset`` (RST_STREAM; HTTP/1.1
    connections are aborted), ``tcp_reset`` (the connection is aborted with a TCP reset),
    ``goaway`` (GOAWAY whose last-stream-id excludes the request: it and every later
    in-flight stream are lost) or ``hang`` (accepted, never answered).
    ``retry_after`` (status mode): seconds, a duration, or ``auto`` (the time left in the
    window). ``after`` (reset, tcp_reset, goaway): a delay before the blow, so it lands
    mid-stream.
``throttle``
    ``scope``: ``provider`` (default), ``project`` or ``device``; ``rate``: requests per
    second (> 0); ``burst``: bucket size (default: max(1, rate)). Over the limit: 429 with the
    provider's body (APNs TooManyRequests, FCM QUOTA_EXCEEDED, Web Push plain 429) and a
    Retry-After (whole seconds, rounded up) after which the bucket holds a token again.
``latency``
    ``distribution``: ``fixed`` (``delay``), ``uniform`` (``min``, ``max``) or ``lognormal``
    (``p50``, ``p99``; p99 > p50). Added before every matching response.
``errors``
    ``probability``: the share (0-1) of matching requests answered 500 (APNs
    InternalServerError, FCM INTERNAL, Web Push plain 500).
``token_churn``
    ``action``: ``reinstall`` (a new token; the old one is dead) or ``uninstall`` (dead, no
    replacement). Either the devices in ``share`` (or ``token``) churn once each, at a moment
    spread over the window (stable for a seed), or ``rate`` devices per second are picked
    with the seeded RNG while the window is open. New tokens appear on ``/_sim/feed``.
``auth``
    ``mode``: ``relaxed`` (APNs provider tokens never expire, OAuth access tokens never
    expire) or ``enforced`` (default rules, or the overrides below);
    ``apns_token_max_age`` (duration; default 1h), ``oauth_token_lifetime`` (duration;
    default 1h). Provider-wide only.

Errors name the source, the line when known, the field path (``faults[2].window.duration``)
and what was expected.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROVIDERS = ("apns", "fcm", "webpush")
KINDS = ("outage", "throttle", "latency", "errors", "token_churn", "auth")
OUTAGE_MODES = ("status", "refused", "reset", "tcp_reset", "goaway", "hang")
THROTTLE_SCOPES = ("provider", "project", "device")
DISTRIBUTIONS = ("fixed", "uniform", "lognormal")
CHURN_ACTIONS = ("reinstall", "uninstall")
AUTH_MODES = ("enforced", "relaxed")

_COMMON = {
    "id",
    "kind",
    "provider",
    "start",
    "at",
    "duration",
    "end",
    "window",
    "share",
    "token",
    "project",
    "anchor",
}
_OWN: dict[str, set[str]] = {
    "outage": {"mode", "retry_after", "after"},
    "throttle": {"scope", "rate", "burst"},
    "latency": {"distribution", "delay", "min", "max", "p50", "p99"},
    "errors": {"probability"},
    "token_churn": {"action", "rate"},
    "auth": {"mode", "apns_token_max_age", "oauth_token_lifetime"},
}
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class FaultSpecError(ValueError):
    """A fault definition that cannot be executed: where it is and what was expected."""

    def __init__(self, source: str, field: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.field = field
        self.message = message
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {field}: {message}")


@dataclass(frozen=True, slots=True)
class Outage:
    mode: str = "status"
    retry_after: float | None = None
    retry_after_auto: bool = False
    after: float = 0.0


@dataclass(frozen=True, slots=True)
class Throttle:
    scope: str
    rate: float
    burst: float


@dataclass(frozen=True, slots=True)
class Latency:
    distribution: str
    delay: float = 0.0
    low: float = 0.0
    high: float = 0.0
    p50: float = 0.0
    p99: float = 0.0


@dataclass(frozen=True, slots=True)
class Errors:
    probability: float


@dataclass(frozen=True, slots=True)
class TokenChurn:
    action: str
    rate: float | None = None


@dataclass(frozen=True, slots=True)
class Auth:
    mode: str = "enforced"
    apns_token_max_age: float | None = None
    oauth_token_lifetime: float | None = None


Params = Outage | Throttle | Latency | Errors | TokenChurn | Auth


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault as written: its window is relative to ``anchor`` (the run's start or now)."""

    kind: str
    provider: str  # apns | fcm | webpush | any
    params: Params
    start: float = 0.0
    end: float | None = None
    id: str | None = None
    share: float | None = None
    token: str | None = None
    project: str | None = None
    anchor: str = "run"  # run | now

    def providers(self) -> tuple[str, ...]:
        return PROVIDERS if self.provider == "any" else (self.provider,)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "provider": self.provider}
        for name in ("share", "token", "project"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for name in self.params.__slots__:
            value = getattr(self.params, name)
            if name == "retry_after_auto":
                if value:
                    out["retry_after"] = "auto"
                continue
            if value is not None and not (name == "after" and value == 0.0):
                out[{"low": "min", "high": "max"}.get(name, name)] = value
        return out


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


class _Reader:
    """Field access with errors that say where and what."""

    def __init__(self, source: str, lines: Mapping[str, int] | None) -> None:
        self.source = source
        self.lines = lines or {}

    def fail(self, field: str, message: str) -> FaultSpecError:
        line = self.lines.get(field)
        probe = field
        while line is None and ("." in probe or "[" in probe):
            probe = probe[: max(probe.rfind("."), probe.rfind("["))]
            line = self.lines.get(probe)
        return FaultSpecError(self.source, field, message, line)

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


def parse_faults(
    data: Any,
    source: str,
    *,
    lines: Mapping[str, int] | None = None,
    prefix: str = "faults",
    anchor: str = "run",
) -> list[FaultSpec]:
    """Validate a fault list (or one fault, or a scenario mapping with ``faults``).

    Raises :class:`FaultSpecError` naming ``source``, the line (from ``lines``: field path ->
    line number, see :func:`yaml_lines`), the field path and what was expected.
    """
    r = _Reader(source, lines)
    if isinstance(data, Mapping) and "kind" not in data:
        if "faults" not in data:
            raise r.fail(prefix, "expected a list of faults (or a mapping with a 'faults' list)")
        data = data["faults"]
    if data is None:
        return []
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise r.fail(prefix, f"expected a list of faults, got {type(data).__name__}")
    out: list[FaultSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        spec = _parse_one(r, item, f"{prefix}[{i}]", anchor)
        if spec.id is not None:
            if spec.id in seen:
                raise r.fail(
                    f"{prefix}[{i}].id", f"expected a unique id, {spec.id!r} is used twice"
                )
            seen.add(spec.id)
        out.append(spec)
    return out


def _parse_one(r: _Reader, item: Any, path: str, default_anchor: str) -> FaultSpec:
    if not isinstance(item, Mapping):
        raise r.fail(
            path, f"expected a mapping with at least kind and provider, got {type(item).__name__}"
        )
    kind = r.choice(item, "kind", path, KINDS, None)
    allowed = _COMMON | _OWN[kind]
    for key in item:
        if key not in allowed:
            raise r.fail(
                f"{path}.{key}",
                f"unknown field for a {kind} fault; expected one of {', '.join(sorted(allowed))}",
            )
    provider = r.choice(item, "provider", path, (*PROVIDERS, "any"), None)
    fault_id = item.get("id")
    if fault_id is not None and (not isinstance(fault_id, str) or not _ID_RE.match(fault_id)):
        raise r.fail(
            f"{path}.id",
            f"expected 1-64 letters, digits or _.:- (starting with a letter or digit), "
            f"got {fault_id!r}",
        )
    anchor = r.choice(item, "anchor", path, ("run", "now"), default_anchor)

    # The window: top-level start/at + duration/end, or a window mapping.
    wpath, wobj = path, item
    if "window" in item:
        if any(k in item for k in ("start", "at", "duration", "end")):
            raise r.fail(
                f"{path}.window",
                "expected either a window mapping or start/duration fields, not both",
            )
        if not isinstance(item["window"], Mapping):
            raise r.fail(f"{path}.window", "expected a mapping such as {start: 10s, duration: 20s}")
        wpath, wobj = f"{path}.window", item["window"]
        for key in wobj:
            if key not in ("start", "at", "duration", "end"):
                raise r.fail(
                    f"{wpath}.{key}", "unknown field; expected start (or at) and duration (or end)"
                )
    if "start" in wobj and "at" in wobj:
        raise r.fail(f"{wpath}.at", "expected start or at, not both")
    if "duration" in wobj and "end" in wobj:
        raise r.fail(f"{wpath}.end", "expected duration or end, not both")
    start = r.duration(wobj, "start", wpath) if "start" in wobj else r.duration(wobj, "at", wpath)
    start = start or 0.0
    end: float | None = None
    duration = r.duration(wobj, "duration", wpath, positive=True)
    if duration is not None:
        end = start + duration
    elif "end" in wobj:
        end = r.duration(wobj, "end", wpath)
        if end is not None and end <= start:
            raise r.fail(
                f"{wpath}.end", f"expected a time after start ({start:g}s), got {wobj['end']!r}"
            )

    share = r.number(item, "share", path, low=0.0, high=1.0)
    token = r.string(item, "token", path)
    project = r.string(item, "project", path)
    if share is not None and token is not None:
        raise r.fail(f"{path}.token", "expected share or token, not both")

    params: Params
    if kind == "outage":
        mode = r.choice(item, "mode", path, OUTAGE_MODES, "status")
        if mode == "refused" and (share is not None or token is not None or project is not None):
            raise r.fail(
                f"{path}.mode",
                "refused closes the whole listener: expected no share, token or project",
            )
        retry_raw = item.get("retry_after")
        retry_auto = retry_raw == "auto"
        retry = None if retry_auto else r.duration(item, "retry_after", path)
        if (retry_raw is not None) and mode != "status":
            raise r.fail(
                f"{path}.retry_after", "only an outage with mode status answers with Retry-After"
            )
        if retry_auto and end is None:
            raise r.fail(f"{path}.retry_after", "auto needs a window with a duration or end")
        after = r.duration(item, "after", path) or 0.0
        if after and mode not in ("reset", "tcp_reset", "goaway"):
            raise r.fail(f"{path}.after", "only reset, tcp_reset and goaway take an after delay")
        params = Outage(mode, retry, retry_auto, after)
    elif kind == "throttle":
        scope = r.choice(item, "scope", path, THROTTLE_SCOPES, "provider")
        rate = r.number(item, "rate", path, low=0.0, low_open=True)
        if rate is None:
            raise r.fail(f"{path}.rate", "expected a number of requests per second > 0")
        burst = r.number(item, "burst", path, low=1.0)
        params = Throttle(scope, rate, burst if burst is not None else max(1.0, rate))
    elif kind == "latency":
        dist = r.choice(item, "distribution", path, DISTRIBUTIONS, "fixed")
        if dist == "fixed":
            delay = r.duration(item, "delay", path)
            if delay is None:
                raise r.fail(
                    f"{path}.delay", "expected a duration such as 200ms for a fixed latency"
                )
            params = Latency(dist, delay=delay)
        elif dist == "uniform":
            low = r.duration(item, "min", path)
            high = r.duration(item, "max", path)
            if low is None or high is None:
                raise r.fail(
                    f"{path}.{'min' if low is None else 'max'}",
                    "expected a duration (uniform needs min and max)",
                )
            if high < low:
                raise r.fail(f"{path}.max", f"expected max >= min ({low:g}s)")
            params = Latency(dist, low=low, high=high)
        else:
            p50 = r.duration(item, "p50", path, positive=True)
            p99 = r.duration(item, "p99", path, positive=True)
            if p50 is None or p99 is None:
                raise r.fail(
                    f"{path}.{'p50' if p50 is None else 'p99'}",
                    "expected a positive duration (lognormal needs p50 and p99)",
                )
            if p99 <= p50:
                raise r.fail(f"{path}.p99", f"expected p99 > p50 ({p50:g}s)")
            params = Latency(dist, p50=p50, p99=p99)
    elif kind == "errors":
        prob = r.number(item, "probability", path, low=0.0, high=1.0)
        if prob is None:
            raise r.fail(f"{path}.probability", "expected the share (0-1) of requests answered 500")
        params = Errors(prob)
    elif kind == "token_churn":
        action = r.choice(item, "action", path, CHURN_ACTIONS, "reinstall")
        rate = r.number(item, "rate", path, low=0.0, low_open=True)
        if rate is not None and end is None:
            raise r.fail(f"{path}.rate", "a churn rate needs a window with a duration or end")
        if rate is None and share is None and token is None:
            raise r.fail(
                f"{path}.share",
                "expected share (0-1 of devices), token, or rate (devices per second)",
            )
        params = TokenChurn(action, rate)
    else:
        if share is not None or token is not None or project is not None:
            raise r.fail(
                f"{path}.kind", "auth rules are provider-wide: expected no share, token or project"
            )
        mode = r.choice(item, "mode", path, AUTH_MODES, "enforced")
        max_age = r.duration(item, "apns_token_max_age", path, positive=True)
        lifetime = r.duration(item, "oauth_token_lifetime", path, positive=True)
        if mode == "relaxed" and (max_age is not None or lifetime is not None):
            raise r.fail(
                f"{path}.mode",
                "relaxed lifts expiry: expected no apns_token_max_age or oauth_token_lifetime",
            )
        params = Auth(mode, max_age, lifetime)
    return FaultSpec(kind, provider, params, start, end, fault_id, share, token, project, anchor)


def yaml_lines(text: str) -> dict[str, int]:
    """Field path (``faults[2].window.duration``) -> 1-based line, for error messages."""
    out: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return out

    def walk(node: yaml.Node, path: str) -> None:
        out.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(key.value)
                child = f"{path}.{name}" if path else name
                out[child] = key.start_mark.line + 1
                walk(value, child)
                out[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                walk(value, f"{path}[{i}]")

    if root is not None:
        walk(root, "")
    return out


def load_fault_file(path: Path) -> list[FaultSpec]:
    """The ``faults`` section of a scenario file (YAML or JSON); other sections are ignored."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultSpecError(source, "file", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FaultSpecError(source, "file", f"expected UTF-8 text: {exc.reason}") from exc
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(exc, "lineno", None)
        # one line: PyYAML's own text spans several, with the offending source quoted
        problem = getattr(exc, "problem", None) or getattr(exc, "msg", None) or str(exc)
        problem = problem.splitlines()[0]
        raise FaultSpecError(source, "file", f"expected valid {kind}: {problem}", line) from exc
    except RecursionError as exc:
        raise FaultSpecError(source, "file", f"expected valid {kind}: nested too deeply") from exc
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise FaultSpecError(
            source, "file", f"expected a mapping at the top level, got {type(data).__name__}", 1
        )
    if data.get("faults") is None:
        return []
    return parse_faults(
        data["faults"], source, lines=yaml_lines(text) if path.suffix != ".json" else None
    )
