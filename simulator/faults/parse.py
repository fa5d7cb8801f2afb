"""Reading fault plans: YAML, JSON or already-decoded data in, :class:`FaultSpec` values out.

The format is described in :mod:`simulator.faults.spec`. Every error is a
:class:`FaultSpecError` naming the source, the line when known, the field path
(``faults[2].window.duration``) and what was expected. The fields every fault shares are
read by :func:`_parse_one` (the window by :func:`_window`, the narrowing fields through the
:data:`_NARROWING` table); each kind's own fields by its entry in the :data:`_PARAMS` table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pushsim import yamlfile
from simulator.faults import hostile
from simulator.faults.fields import Reader
from simulator.faults.spec import (
    AUTH_MODES,
    CHURN_ACTIONS,
    DISTRIBUTIONS,
    KINDS,
    OUTAGE_MODES,
    PROVIDERS,
    THROTTLE_SCOPES,
    Auth,
    Errors,
    FaultSpec,
    FaultSpecError,
    Latency,
    Outage,
    Params,
    Throttle,
    TokenChurn,
)

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
    "hostile_client": hostile.FIELDS,
}
_WINDOW_FIELDS = ("start", "at", "duration", "end")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


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
    line number, see :func:`pushsim.yamlfile.load`), the field path and what was expected.
    """
    r = Reader(source, lines)
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


@dataclass(frozen=True, slots=True)
class _Head:
    """The fields every fault has, read before its kind's own (which may depend on them)."""

    start: float
    end: float | None
    share: float | None
    token: str | None
    project: str | None

    def narrowed(self) -> bool:
        """Whether the fault is limited to some devices or a project (not provider-wide)."""
        return self.share is not None or self.token is not None or self.project is not None


def _parse_one(r: Reader, item: Any, path: str, default_anchor: str) -> FaultSpec:
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
    start, end = _window(r, item, path)
    head = _Head(start, end, **{key: read(r, item, key, path) for key, read in _NARROWING.items()})
    if head.share is not None and head.token is not None:
        raise r.fail(f"{path}.token", "expected share or token, not both")
    params = _PARAMS[kind](r, item, path, head)
    return FaultSpec(
        kind, provider, params, start, end, fault_id, head.share, head.token, head.project, anchor
    )


def _window(r: Reader, item: Mapping[str, Any], path: str) -> tuple[float, float | None]:
    """The window: top-level start/at + duration/end, or a window mapping."""
    wpath, wobj = path, item
    if "window" in item:
        if any(k in item for k in _WINDOW_FIELDS):
            raise r.fail(
                f"{path}.window",
                "expected either a window mapping or start/duration fields, not both",
            )
        if not isinstance(item["window"], Mapping):
            raise r.fail(f"{path}.window", "expected a mapping such as {start: 10s, duration: 20s}")
        wpath, wobj = f"{path}.window", item["window"]
        for key in wobj:
            if key not in _WINDOW_FIELDS:
                raise r.fail(
                    f"{wpath}.{key}", "unknown field; expected start (or at) and duration (or end)"
                )
    if "start" in wobj and "at" in wobj:
        raise r.fail(f"{wpath}.at", "expected start or at, not both")
    if "duration" in wobj and "end" in wobj:
        raise r.fail(f"{wpath}.end", "expected duration or end, not both")
    start = r.duration(wobj, "start" if "start" in wobj else "at", wpath) or 0.0
    duration = r.duration(wobj, "duration", wpath, positive=True)
    if duration is not None:
        return start, start + duration
    end = r.duration(wobj, "end", wpath)
    if end is not None and end <= start:
        raise r.fail(
            f"{wpath}.end", f"expected a time after start ({start:g}s), got {wobj['end']!r}"
        )
    return start, end


# The fields that narrow a fault to some requests, each with its checker, in checking order.
_NARROWING: dict[str, Callable[[Reader, Mapping[str, Any], str, str], Any]] = {
    "share": lambda r, obj, key, path: r.number(obj, key, path, low=0.0, high=1.0),
    "token": Reader.string,
    "project": Reader.string,
}


def _outage(r: Reader, item: Mapping[str, Any], path: str, head: _Head) -> Params:
    mode = r.choice(item, "mode", path, OUTAGE_MODES, "status")
    if mode == "refused" and head.narrowed():
        raise r.fail(
            f"{path}.mode", "refused closes the whole listener: expected no share, token or project"
        )
    retry_raw = item.get("retry_after")
    retry_auto = retry_raw == "auto"
    retry = None if retry_auto else r.duration(item, "retry_after", path)
    if (retry_raw is not None) and mode != "status":
        raise r.fail(
            f"{path}.retry_after", "only an outage with mode status answers with Retry-After"
        )
    if retry_auto and head.end is None:
        raise r.fail(f"{path}.retry_after", "auto needs a window with a duration or end")
    after = r.duration(item, "after", path) or 0.0
    if after and mode not in ("reset", "tcp_reset", "goaway"):
        raise r.fail(f"{path}.after", "only reset, tcp_reset and goaway take an after delay")
    return Outage(mode, retry, retry_auto, after)


def _throttle(r: Reader, item: Mapping[str, Any], path: str, head: _Head) -> Params:
    scope = r.choice(item, "scope", path, THROTTLE_SCOPES, "provider")
    rate = r.number(item, "rate", path, low=0.0, low_open=True)
    if rate is None:
        raise r.fail(f"{path}.rate", "expected a number of requests per second > 0")
    burst = r.number(item, "burst", path, low=1.0)
    return Throttle(scope, rate, burst if burst is not None else max(1.0, rate))


def _latency(r: Reader, item: Mapping[str, Any], path: str, head: _Head) -> Params:
    dist = r.choice(item, "distribution", path, DISTRIBUTIONS, "fixed")
    return _DISTRIBUTIONS[dist](r, item, path)


def _fixed(r: Reader, item: Mapping[str, Any], path: str) -> Latency:
    delay = r.duration(item, "delay", path)
    if delay is None:
        raise r.fail(f"{path}.delay", "expected a duration such as 200ms for a fixed latency")
    return Latency("fixed", delay=delay)


def _uniform(r: Reader, item: Mapping[str, Any], path: str) -> Latency:
    low = r.duration(item, "min", path)
    high = r.duration(item, "max", path)
    if low is None or high is None:
        raise r.fail(
            f"{path}.{'min' if low is None else 'max'}",
            "expected a duration (uniform needs min and max)",
        )
    if high < low:
        raise r.fail(f"{path}.max", f"expected max >= min ({low:g}s)")
    return Latency("uniform", low=low, high=high)


def _lognormal(r: Reader, item: Mapping[str, Any], path: str) -> Latency:
    p50 = r.duration(item, "p50", path, positive=True)
    p99 = r.duration(item, "p99", path, positive=True)
    if p50 is None or p99 is None:
        raise r.fail(
            f"{path}.{'p50' if p50 is None else 'p99'}",
            "expected a positive duration (lognormal needs p50 and p99)",
        )
    if p99 <= p50:
        raise r.fail(f"{path}.p99", f"expected p99 > p50 ({p50:g}s)")
    return Latency("lognormal", p50=p50, p99=p99)


def _errors(r: Reader, item: Mapping[str, Any], path: str, head: _Head) -> Params:
    prob = r.number(item, "probability", path, low=0.0, high=1.0)
    if prob is None:
        raise r.fail(f"{path}.probability", "expected the share (0-1) of requests answered 500")
    return Errors(prob)


def _token_churn(r: Reader, item: Mapping[str, Any], path: str, head: _Head) -> Params:
    action = r.choice(item, "action", path, CHURN_ACTIONS, "reinstall")
    rate = r.number(item, "rate", path, low=0.0, low_open=True)
    if rate is not None and head.end is None:
        raise r.fail(f"{path}.rate", "a churn rate needs a window with a duration or end")
    if rate is None and head.share is None and head.token is None:
        raise r.fail(
            f"{path}.share", "expected share (0-1 of devices), token, or rate (devices per second)"
        )
    return TokenChurn(action, rate)


def _auth(r: Reader, item: Mapping[str, Any], path: str, head: _Head) -> Params:
    if head.narrowed():
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
    return Auth(mode, max_age, lifetime)


# kind -> the reader of its own fields
_PARAMS: dict[str, Callable[[Reader, Mapping[str, Any], str, _Head], Params]] = {
    "outage": _outage,
    "throttle": _throttle,
    "latency": _latency,
    "errors": _errors,
    "token_churn": _token_churn,
    "auth": _auth,
    "hostile_client": hostile.read,
}
# latency distribution -> the reader of its parameters
_DISTRIBUTIONS: dict[str, Callable[[Reader, Mapping[str, Any], str], Latency]] = {
    "fixed": _fixed,
    "uniform": _uniform,
    "lognormal": _lognormal,
}


def load_fault_file(path: Path) -> list[FaultSpec]:
    """The ``faults`` section of a scenario file (YAML or JSON); other sections are ignored."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultSpecError(source, "file", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise FaultSpecError(source, "file", f"expected UTF-8 text: {exc.reason}") from exc
    is_json = path.suffix == ".json"
    kind = "JSON" if is_json else "YAML"
    lines: dict[str, int] | None = None
    try:
        if is_json:
            data = json.loads(text)
        else:
            data, lines = yamlfile.load(text)
    except (yaml.YAMLError, ValueError) as exc:
        line, problem = yamlfile.problem(exc)
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
    return parse_faults(data["faults"], source, lines=lines)
