"""The population read out in bulk: pages of devices and CSV token tables.

Both walk the cohorts in minting order and compute each run's tokens together
(:meth:`~simulator.state.devices.DeviceRegistry.tokens`), so reading a million devices costs
about a microsecond of token work each. Web Push rows derive each subscription's keys
(:mod:`simulator.state.subscriptions`): a scalar multiplication a row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any, cast

from simulator.state.devices import DeviceRegistry, shown
from simulator.state.population import INSTALLED, Cohort

PAGE = 100_000  # devices in one answer of the control API
CSV_CHUNK = 10_000  # rows per piece of a streamed CSV

CSV_COLUMNS = {
    "apns": ("id", "token", "bundle_id", "environment"),
    "fcm": ("id", "token", "project_id"),
    "webpush": ("id", "endpoint", "p256dh", "auth"),
}


def runs(
    registry: DeviceRegistry, provider: str | None, after: int, until: int, size: int
) -> Iterator[tuple[Cohort, range]]:
    """Numbers ``after < n <= until`` of ``provider``'s cohorts, in runs of at most ``size``."""
    for cohort, _ in registry.population.numbers(provider):
        lo, hi = max(cohort.first, after + 1), min(cohort.end, until + 1)
        for start in range(lo, hi, size):
            yield cohort, range(start, min(hi, start + size))


def select(
    registry: DeviceRegistry, provider: str | None, after: int, until: int, limit: int
) -> tuple[list[tuple[Cohort, range]], int | None]:
    """The runs (of at most :data:`CSV_CHUNK`) holding the first ``limit`` devices numbered
    ``after < n <= until``; and the ``after`` of the next page (None when this is the last)."""
    chosen: list[tuple[Cohort, range]] = []
    total = 0
    for cohort, numbers in runs(registry, provider, after, until, CSV_CHUNK):
        if total >= limit:
            return chosen, chosen[-1][1][-1]
        taken = numbers[: limit - total]
        chosen.append((cohort, taken))
        total += len(taken)
        if len(taken) < len(numbers):
            return chosen, taken[-1]
    return chosen, None


def docs(
    registry: DeviceRegistry, cohort: Cohort, numbers: range, webpush_base_url: str
) -> list[dict[str, Any]]:
    """The devices ``numbers`` of ``cohort`` as the control API shows them."""
    pop = registry.population
    flags, gens = pop.flags, pop.generations
    tokens = registry.tokens(cohort, numbers)
    ask = cohort.application_server_key
    derive = registry.subscriptions.keys if cohort.provider == "webpush" else None
    return [
        shown(
            cohort,
            n,
            flags[n - 1],
            gens[n - 1],
            token,
            derive(n, gens[n - 1], ask) if derive is not None else None,
            webpush_base_url,
        )
        for n, token in zip(numbers, tokens, strict=True)
    ]


_SLOTS = {"number": "\x01n\x01", "generation": "\x01g\x01", "token": "\x01t\x01"}


def _template(cohort: Cohort, flags: int) -> str:
    """One device of ``cohort`` (with ``flags``) as JSON, with %-slots where its number,
    generation and token go: :func:`shown` stays the only place that knows the shape."""
    slot = _SLOTS
    doc = shown(
        cohort,
        cast(int, slot["number"]),
        flags,
        cast(int, slot["generation"]),
        slot["token"],
        None,
        "",
    )
    text = json.dumps(doc, separators=(",", ":")).replace("%", "%%")
    esc = {k: json.dumps(v)[1:-1] for k, v in slot.items()}
    text = text.replace(esc["number"], "%(n)d").replace(f'"{esc["generation"]}"', "%(g)d")
    return text.replace(esc["token"], "%(t)s")  # tokens are hex or base64url: nothing to escape


def docs_json(
    registry: DeviceRegistry, cohort: Cohort, numbers: range, webpush_base_url: str
) -> str:
    """:func:`docs` as JSON objects joined by commas, written straight from the parts."""
    if cohort.provider == "webpush":  # each subscription's keys are derived anyway
        return json.dumps(docs(registry, cohort, numbers, webpush_base_url), separators=(",", ":"))[
            1:-1
        ]
    pop = registry.population
    flags, gens = pop.flags, pop.generations
    templates = [_template(cohort, f) for f in range(4)]
    tokens = registry.tokens(cohort, numbers)
    return ",".join(
        templates[flags[n - 1] & 3] % {"n": n, "g": gens[n - 1], "t": t}
        for n, t in zip(numbers, tokens, strict=True)
    )


def page(
    registry: DeviceRegistry,
    provider: str | None,
    after: int,
    until: int,
    limit: int,
    webpush_base_url: str = "",
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to ``limit`` devices numbered ``after < n <= until``, shown; and the next ``after``."""
    chosen, more = select(registry, provider, after, until, limit)
    out: list[dict[str, Any]] = []
    for cohort, numbers in chosen:
        out += docs(registry, cohort, numbers, webpush_base_url)
    return out, more


def _rows(
    registry: DeviceRegistry, cohort: Cohort, numbers: range, base: str
) -> Iterator[tuple[str, ...]]:
    flags = registry.population.flags
    tokens = registry.tokens(cohort, numbers)
    row = _ROW[cohort.provider]
    for n, token in zip(numbers, tokens, strict=True):
        if flags[n - 1] & INSTALLED:
            yield row(registry, cohort, n, token, base)


def _apns_row(_r: DeviceRegistry, c: Cohort, n: int, token: str, _b: str) -> tuple[str, ...]:
    return (f"apns-{n}", token, c.app, c.environment)


def _fcm_row(_r: DeviceRegistry, c: Cohort, n: int, token: str, _b: str) -> tuple[str, ...]:
    return (f"fcm-{n}", token, c.app)


def _webpush_row(r: DeviceRegistry, c: Cohort, n: int, token: str, base: str) -> tuple[str, ...]:
    keys = r.subscriptions.keys(n, r.population.generations[n - 1], c.application_server_key)
    endpoint = f"{base}{token}" if base.endswith("/") else f"{base}/wp/{token}"
    return (f"webpush-{n}", endpoint, keys.p256dh, keys.auth)


_ROW: dict[str, Callable[[DeviceRegistry, Cohort, int, str, str], tuple[str, ...]]] = {
    "apns": _apns_row,
    "fcm": _fcm_row,
    "webpush": _webpush_row,
}


def csv_chunks(registry: DeviceRegistry, provider: str, webpush_base_url: str) -> Iterator[str]:
    """``provider``'s installed devices as CSV text (a header, then a row a device), in
    pieces of :data:`CSV_CHUNK` rows."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_COLUMNS[provider])
    size = registry.population.size
    for cohort, numbers in runs(registry, provider, 0, size, CSV_CHUNK):
        out.writerows(_rows(registry, cohort, numbers, webpush_base_url))
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue()
