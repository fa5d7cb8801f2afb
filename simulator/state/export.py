"""The population read out in bulk: pages of devices and CSV token tables.

Both walk the cohorts in minting order and compute each run's tokens together
(:meth:`~simulator.state.devices.DeviceRegistry.tokens`), so reading a million devices costs
about a microsecond of token work each. Web Push rows derive each subscription's keys
(:mod:`simulator.state.subscriptions`): a scalar multiplication a row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

from simulator.state.devices import Device, DeviceRegistry
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


def page(
    registry: DeviceRegistry, provider: str | None, after: int, until: int, limit: int
) -> tuple[list[Device], int | None]:
    """Up to ``limit`` devices numbered ``after < n <= until``; and the ``after`` of the next
    page (None when this is the last)."""
    out: list[Device] = []
    for cohort, numbers in runs(registry, provider, after, until, limit):
        room = limit - len(out)
        if room <= 0:
            return out, out[-1].number
        numbers = numbers[:room]
        gens = registry.population.generations
        tokens = registry.tokens(cohort, numbers)
        out.extend(
            Device(registry, n, cohort, gens[n - 1], t)
            for n, t in zip(numbers, tokens, strict=True)
        )
    return out, None


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
