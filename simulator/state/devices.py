"""Simulated devices: the ground truth of which tokens are valid and what each device received.

The registry is pure state (no I/O). It is driven by the control API (mint, uninstall,
rotate, offline/online), by the fault plan (token churn) and by the provider cores
(delivery). Time comes from an injected clock and the token key from a seeded RNG, so one
seed mints the same tokens.

It holds millions of devices in a few bytes each: a device is a number in the
:class:`~simulator.state.population.Population` (cohorts and two arrays), its tokens are
computed from (number, generation) by :class:`~simulator.state.tokens.TokenCodec` and map
back to it, a Web Push subscription's keys are derived when used
(:mod:`simulator.state.subscriptions`), and what only some devices have (inbox, pending
messages, topics) lives in bounded dictionaries (:mod:`simulator.state.records`,
:mod:`simulator.state.extras`). A :class:`Device` is a view made on demand
(:mod:`simulator.state.views`). A worker process shares this state through the population's
deltas and the token key (see :mod:`simulator.state.population`).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pushsim.clock import Clock
from simulator.faults.record import IN_FLIGHT_GRACE
from simulator.state.credentials import BUNDLE_ID, FCM_PROJECT_ID
from simulator.state.extras import Extras
from simulator.state.population import Cohort, Population, PopulationFull
from simulator.state.records import DeliveryLog, FeedLog, Inboxes
from simulator.state.subscriptions import SubscriptionKeys, WebPushKeys
from simulator.state.tokens import TokenCodec
from simulator.state.views import Device, DeviceMap, DeviceRun

__all__ = [
    "PROVIDERS",
    "Device",
    "DeviceRegistry",
    "PopulationFull",
    "TokenLookup",
    "TokenState",
    "WebPushKeys",
    "describe",
    "find_correlation",
    "shown",
]

PROVIDERS = ("apns", "fcm", "webpush")
DEFAULT_APPS = {"apns": BUNDLE_ID, "fcm": FCM_PROJECT_ID, "webpush": "https://app.example.com"}


class TokenState(enum.Enum):
    VALID = "valid"
    DEAD = "dead"  # issued, then the app was uninstalled or reinstalled
    UNKNOWN = "unknown"  # never issued here (or malformed)


@dataclass(slots=True)
class TokenLookup:
    state: TokenState
    device: Device | None = None
    died_at_ms: int | None = None
    reason: str = ""


class DeviceRegistry:
    """All simulated devices, their tokens (live and dead), inboxes, and the token feed."""

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        webpush_base_url: str = "",
        *,
        key: bytes | None = None,
    ) -> None:
        """``key``: the token key (32 bytes) of the population a worker process mirrors."""
        self.clock = clock
        self.rng = rng
        self.webpush_base_url = webpush_base_url
        self.codec = TokenCodec(key if key is not None else rng.randbytes(32))
        self.population = Population()
        self.subscriptions = SubscriptionKeys(self.codec.key)
        self.extras = Extras()
        self.inboxes = Inboxes()
        self.devices = DeviceMap(self)
        self.feed = FeedLog(self._resolve)
        self.deliveries = DeliveryLog(self._resolve)
        # (provider, token) -> sends to a dead token: first/last time answered, count
        self.rejections: dict[tuple[str, str], dict[str, Any]] = {}
        # what the device does with each delivery (simulator.state.device_user)
        self.on_deliver: Callable[[Device, dict[str, Any]], None] | None = None

    def _resolve(self, number: int, generation: int) -> tuple[str, str, str]:
        cohort = self.population.cohort(number)
        assert cohort is not None
        token = self.codec.encode(cohort.provider, number, generation)
        return f"{cohort.provider}-{number}", cohort.provider, token

    # -- minting ----------------------------------------------------------------

    def mint(
        self,
        provider: str,
        count: int = 1,
        *,
        app: str | None = None,
        environment: str = "production",
        application_server_key: str | None = None,
    ) -> DeviceRun:
        """``count`` new devices (a lazy sequence); :class:`PopulationFull` past free memory."""
        if provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")
        cohort = self.population.add(
            provider,
            count,
            app or DEFAULT_APPS[provider],
            environment,
            application_server_key,
            self.clock.time(),
        )
        return DeviceRun(self, cohort.first, cohort.end)

    def tokens(self, cohort: Cohort, numbers: range) -> list[str]:
        """The current tokens of ``numbers`` (of ``cohort``), computed together."""
        gens = self.population.generations[numbers.start - 1 : numbers.stop - 1]
        return self.codec.encode_many(cohort.provider, numbers, gens)

    # -- lifecycle --------------------------------------------------------------

    def uninstall(
        self, device_id: str, cause: str = "control", reason: str = "uninstalled"
    ) -> Device:
        """The token dies; ``reason`` "expired" marks a Web Push subscription that timed out."""
        dev = self.devices[device_id]
        if dev.installed:
            gen = dev.generation
            self.population.kill(dev.number, dev.provider, self._now_ms(), reason)
            self.extras.forget(dev.number, topics=False)
            self.feed.add(self.clock.time(), reason, cause, dev.number, gen, -1)
        return dev

    def rotate(self, device_id: str, cause: str = "control") -> Device:
        """Reinstall: the old token dies and a new one is issued."""
        dev = self.devices[device_id]
        gen = dev.generation
        self.population.reinstall(dev.number, dev.provider, self._now_ms())
        self.extras.forget(dev.number, topics=True)
        self.feed.add(self.clock.time(), "rotated", cause, dev.number, gen, gen + 1)
        return dev

    def _now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    def feed_since(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        return self.feed.since(seq, limit)

    # -- lookups ----------------------------------------------------------------

    def lookup(self, provider: str, token: str) -> TokenLookup:
        found = self.codec.decode(provider, token)
        if found is None:
            return TokenLookup(TokenState.UNKNOWN)
        return self._state_of(provider, found[0], found[1], token)

    def lookup_fid(self, fid: str) -> TokenLookup:
        """The FCM device whose registration token begins with installation ID ``fid``."""
        found = self.codec.decode_fid(fid)
        if found is None:
            return TokenLookup(TokenState.UNKNOWN)
        return self._state_of("fcm", found[0], found[1], "")

    def _state_of(self, provider: str, number: int, gen: int, token: str) -> TokenLookup:
        pop = self.population
        cohort = pop.cohort(number)
        if cohort is None or cohort.provider != provider or gen > pop.generations[number - 1]:
            return TokenLookup(TokenState.UNKNOWN)
        current = gen == pop.generations[number - 1]
        dev = Device(self, number, cohort, gen, token) if current and token else None
        dev = dev or Device(self, number, cohort)
        if current and pop.installed(number):
            return TokenLookup(TokenState.VALID, dev)
        died = pop.death(number, gen)
        at_ms, reason = died if died is not None else (0, "uninstalled")
        return TokenLookup(TokenState.DEAD, dev, at_ms, reason)

    def note_rejection(self, provider: str, token: str) -> None:
        """A provider core answered a send to a dead token (Unregistered / 410 ...).

        The harness reads these to measure wasted sends and how fast a sender prunes. A
        rejection within ``IN_FLIGHT_GRACE`` of the first was already on its way (another
        instance's send, before the prune could reach it): counted in ``in_flight`` too.
        """
        now = self.clock.time()
        rec = self.rejections.get((provider, token))
        if rec is None:
            found = self.lookup(provider, token)
            dead = found.state is TokenState.DEAD and found.device is not None
            self.rejections[(provider, token)] = {
                "provider": provider,
                "token": token,
                "device_id": found.device.id if dead and found.device else None,
                "died_at": (found.died_at_ms or 0) / 1000 if dead else None,
                "first_rejected_at": now,
                "last_rejected_at": now,
                "count": 1,
                "in_flight": 0,
            }
        else:
            rec["last_rejected_at"] = now
            rec["count"] += 1
            if now - rec["first_rejected_at"] <= IN_FLIGHT_GRACE:
                rec["in_flight"] += 1

    def live_devices(self, provider: str | None = None) -> Iterator[Device]:
        """Every installed device (of ``provider``), in minting order."""
        flags = self.population.flags
        for cohort, numbers in self.population.numbers(provider):
            for number in numbers:
                if flags[number - 1] & 1:
                    yield Device(self, number, cohort)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per provider: devices installed now (``live``) and ever minted (``total``)."""
        pop = self.population
        return {p: {"live": pop.live.get(p, 0), "total": pop.total.get(p, 0)} for p in PROVIDERS}

    # -- delivery ---------------------------------------------------------------

    def deliver(self, dev: Device, entry: dict[str, Any]) -> None:
        """Record that ``dev`` saw a message now (ground truth for the harness)."""
        now = self.clock.time()
        entry.setdefault("at", now)
        entry["delivered_at"] = now
        own = dev.token
        token = entry.setdefault("token", own)
        if self.on_deliver is not None:
            self.on_deliver(dev, entry)  # the device side: shown, opened, ...
        self.inboxes.add(dev.number, entry)
        self.deliveries.add(
            now,
            dev.number,
            dev.generation,
            None if token == own else token,
            entry.get("message_id"),
            entry.get("correlation_id"),
        )

    def deliveries_since(self, seq: int, limit: int = 10_000) -> list[dict[str, Any]]:
        return self.deliveries.since(seq, limit)

    @property
    def delivery_seq(self) -> int:
        return self.deliveries.seq


def describe(dev: Device, webpush_base_url: str) -> dict[str, Any]:
    """The device as the control API shows it.

    A ``webpush_base_url`` ending in ``/`` is the whole prefix of a subscription's endpoint
    (a real push service's, as ``pushsim simulator --real-hosts`` hands out); otherwise the
    endpoint is the Web Push listener's ``/wp/<token>``.
    """
    flags = dev.installed | dev.online << 1
    return shown(
        dev.cohort, dev.number, flags, dev.generation, dev.token, dev.webpush, webpush_base_url
    )


def shown(
    cohort: Cohort,
    number: int,
    flags: int,
    generation: int,
    token: str,
    keys: WebPushKeys | None,
    webpush_base_url: str,
) -> dict[str, Any]:
    """:func:`describe` from the device's parts (flags: bit 0 installed, bit 1 online), as
    pages of devices are shown without a view per device."""
    out: dict[str, Any] = {
        "id": f"{cohort.provider}-{number}",
        "provider": cohort.provider,
        "app": cohort.app,
        "installed": bool(flags & 1),
        "online": bool(flags & 2),
        "generation": generation,
        "token": token,
    }
    if cohort.provider == "apns":
        out["bundle_id"] = cohort.app
        out["environment"] = cohort.environment
    elif cohort.provider == "fcm":
        out["project_id"] = cohort.app
    else:
        assert keys is not None
        base = webpush_base_url
        out["subscription"] = {
            "endpoint": f"{base}{token}" if base.endswith("/") else f"{base}/wp/{token}",
            "expirationTime": None,
            "keys": {"p256dh": keys.p256dh, "auth": keys.auth},
        }
    return out


def find_correlation(payload: Any) -> str | None:
    """A correlation id the harness planted in a message's data, wherever the provider put it."""
    if isinstance(payload, dict):
        for key in ("correlation_id", "pushsim_correlation_id"):
            v = payload.get(key)
            if isinstance(v, str):
                return v
        for v in payload.values():
            if isinstance(v, dict):
                found = find_correlation(v)
                if found:
                    return found
    return None
