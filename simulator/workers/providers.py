"""Each provider's side of ``--workers N``, in one table (:func:`provider_table`).

A worker serves a provider's sends itself (``is_local``) and hands every other request
(OAuth, topic management, message deletion, any API added later) to the primary
whole. What a provider says here:

- APNs: sends are answered from the worker's registry (:mod:`.replica`); what the core
  delivers goes to the primary, which delivers or stores it (``ApnsCore.route``);
  operator settings, expired tokens and revoked keys are shipped when they change.
- Web Push: likewise (VAPID and decryption on the worker, with the subscription's keys
  derived there from the token key); the browser side (delivery, holding while offline,
  topics replacing held messages) is the primary's; the service settings are shipped.
- FCM: the worker checks the access token, the JSON and the message
  (:meth:`~simulator.providers.fcm.core.FcmCore.prepare`) and asks the primary to decide
  (:meth:`~simulator.providers.fcm.core.FcmCore.decide`: forced errors, the device or the
  topic's subscribers, the quotas, delivery), so quotas are counted once and fan-out and
  store-and-forward see one truth. Access tokens are the primary's: a worker asks for
  one the first time it sees it, and the primary re-ships those a worker holds when they
  change (``/_sim/fcm/oauth/expire``).
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from pushsim.clock import Clock
from simulator.app import Simulator
from simulator.providers.apns.core import ApnsCore
from simulator.providers.fcm.core import FcmCore, bearer_token
from simulator.providers.fcm.oauth import AccessGrant, AccessTokens
from simulator.providers.fcm.router import PROJECTS_PREFIX, SEND_SUFFIX, FcmRouter
from simulator.providers.sends import is_send
from simulator.providers.webpush.browser import Browsers
from simulator.providers.webpush.core import WebPushCore
from simulator.state.devices import Device
from simulator.wire import Action, Handler, Later, Request, Respond

MAX_GRANTS = 10_000


class WorkerLink(Protocol):
    """What a worker's provider parts use to reach the primary."""

    def effect(self, kind: str, data: Any) -> None:
        """Tell the primary something changed (sent at the end of this loop turn)."""

    def later(self, kind: str, data: Any, then: Callable[[Any], Action] | None = None) -> Later:
        """An answer the primary decides: ``then(result)`` (or the result itself)."""
        ...


def part_handler(sim: Simulator, listener: str) -> Handler | None:
    """The handler a part serves on ``listener``, not behind the fault gate."""
    for part in sim.parts:
        lp = part.listeners.get(listener)
        if lp is not None:
            return lp.handler
    return None


_CORES: weakref.WeakKeyDictionary[Simulator, dict[str, Any]] = weakref.WeakKeyDictionary()


def _core(sim: Simulator, listener: str, kind: type[Any]) -> Any:
    """The core behind ``listener`` (found once per simulator: this runs per request)."""
    found = _CORES.get(sim)
    if found is None:
        found = _CORES[sim] = {}
    core = found.get(listener)
    if core is None:
        handler = part_handler(sim, listener)
        core = getattr(handler, "core", handler)  # a router in front of the core
        if not isinstance(core, kind):
            raise TypeError(f"listener {listener!r} does not serve {kind.__name__}")
        found[listener] = core
    return core


def _posted_send(provider: str) -> Callable[[Request], bool]:
    return lambda req: req.method == "POST" and is_send(provider, req.path)


# -- APNs ----------------------------------------------------------------------------


def _apns_local(req: Request) -> bool:
    # Live Activity tokens and broadcast channels are the primary's
    return _posted_send("apns")(req) and req.header("apns-push-type") != "liveactivity"


class ApnsWorkers:
    provider = "apns"
    is_local = staticmethod(_apns_local)

    def worker_handler(self, handler: Handler, link: WorkerLink) -> Handler:
        core = getattr(handler, "core", handler)  # the listener's router wraps the core
        assert isinstance(core, ApnsCore)
        core.forward = lambda dev, entry: link.effect("deliver", ("apns", dev.id, entry))
        return handler

    @staticmethod
    def deliver(sim: Simulator, dev: Device, entry: Any) -> None:
        assert sim.apns is not None
        core = sim.apns.cores["sandbox" if dev.environment == "sandbox" else "production"]
        core.route(dev, entry, entry.get("expiration"), sim.clock.time())

    def settings(self, sim: Simulator) -> Any:
        service = sim.apns
        assert service is not None
        view = {
            env: {k: v for k, v in s.items() if k != "environment"}
            for env, s in service.config_view().items()
        }
        return view, sorted(service.state.expired_tokens), sorted(service.verifier.revoked)

    def apply_settings(self, sim: Simulator, data: Any) -> None:
        service = sim.apns
        assert service is not None
        view, expired, revoked = data
        for env, settings in view.items():
            service.update_config({**settings, "environment": env})
        service.state.expired_tokens.update(expired)
        for kid in revoked:
            service.verifier.revoke(kid)


# -- Web Push --------------------------------------------------------------------------


class ForwardingBrowsers(Browsers):
    """The browser side as a worker sees it: every message goes to the primary's."""

    def __init__(self, inner: Browsers, link: WorkerLink) -> None:
        super().__init__(inner.provider, inner.registry, inner.stats)
        self.link = link

    def dispatch(
        self,
        dev: Device,
        entry: dict[str, Any],
        now: float,
        ttl: int,
        topic: str | None,
        max_pending: int,
    ) -> None:
        self.link.effect("deliver", ("webpush", dev.id, (entry, now, ttl, topic, max_pending)))

    def forget(self, dev: Device) -> None:
        pass  # the primary drops what the browser held when the uninstall reaches it


def _webpush_local(req: Request) -> bool:
    # receipt subscriptions are the primary's: a push asking for a receipt goes there
    asks = req.header("push-receipt") is not None or "respond-async" in (req.header("prefer") or "")
    return _posted_send("webpush")(req) and not asks


class WebPushWorkers:
    provider = "webpush"
    is_local = staticmethod(_webpush_local)

    def worker_handler(self, handler: Handler, link: WorkerLink) -> Handler:
        core = getattr(handler, "core", handler)  # the listener's router wraps the core
        assert isinstance(core, WebPushCore)
        core.browsers = ForwardingBrowsers(core.browsers, link)
        return handler

    @staticmethod
    def deliver(sim: Simulator, dev: Device, payload: Any) -> None:
        core: WebPushCore = _core(sim, "webpush", WebPushCore)
        entry, now, ttl, topic, max_pending = payload
        core.browsers.dispatch(dev, entry, now, ttl, topic, max_pending)

    @staticmethod
    def uninstall(sim: Simulator, dev: Device, cause: str, reason: str) -> None:
        core: WebPushCore = _core(sim, "webpush", WebPushCore)
        if dev.installed:
            core.browsers.forget(dev)
            sim.registry.uninstall(dev.id, cause=cause, reason=reason)

    def settings(self, sim: Simulator) -> Any:
        return sim.webpush_config.as_dict(), sim.registry.webpush_base_url

    def apply_settings(self, sim: Simulator, data: Any) -> None:
        config, base_url = data
        for name, value in config.items():
            setattr(sim.webpush_config, name, value)
        sim.registry.webpush_base_url = base_url


# -- FCM -------------------------------------------------------------------------------


class PulledGrants(AccessTokens):
    """Access tokens as far as a worker knows them: asked of the primary on first sight."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock, random.Random(0))
        self._known: dict[str, AccessGrant | None] = {}

    def get(self, token: str) -> AccessGrant | None:
        return self._known.get(token)

    def knows(self, token: str) -> bool:
        return token in self._known

    def remember(self, token: str, grant: AccessGrant | None) -> None:
        if len(self._known) >= MAX_GRANTS:
            self._known.clear()
        self._known[token] = grant


class FcmSplit:
    """A worker's FCM sends: checked here, decided by the primary."""

    def __init__(self, router: FcmRouter, link: WorkerLink) -> None:
        self.router = router
        self.core = router.core
        self.link = link
        self.grants = PulledGrants(self.core.clock)
        self.core.tokens = self.grants

    def handle(self, req: Request) -> Action:
        project = req.path[len(PROJECTS_PREFIX) : -len(SEND_SUFFIX)]
        if not project or "/" in project:
            return self.router.handle(req)  # its 404, which needs no state
        token = bearer_token(req)
        if token is not None and not self.grants.knows(token):

            def then(grant: Any) -> Action:
                self.grants.remember(token, grant)
                return self._send(req, project)

            return self.link.later("fcm.grant", token, then)
        return self._send(req, project)

    def _send(self, req: Request, project: str) -> Action:
        prepared = self.core.prepare(req, project)
        if isinstance(prepared, Respond):
            return prepared
        out, validate_only = prepared
        return self.link.later("fcm.decide", (project, out, validate_only))


class FcmWorkers:
    provider = "fcm"
    is_local = staticmethod(_posted_send("fcm"))

    def __init__(self) -> None:
        self.lent: dict[str, float | None] = {}  # primary: tokens lent to workers -> expiry
        self.split: FcmSplit | None = None  # worker: its sends' handler

    def worker_handler(self, handler: Handler, link: WorkerLink) -> Handler:
        assert isinstance(handler, FcmRouter)
        self.split = FcmSplit(handler, link)
        return self.split

    def grant(self, sim: Simulator, token: str) -> AccessGrant | None:
        core: FcmCore = _core(sim, "fcm", FcmCore)
        grant = core.tokens.get(token)
        if len(self.lent) < MAX_GRANTS:
            self.lent[token] = grant.expires_at if grant is not None else None
        return grant

    @staticmethod
    def decide(sim: Simulator, data: Any) -> Respond:
        core: FcmCore = _core(sim, "fcm", FcmCore)
        project, out, validate_only = data
        return core.decide(project, out, validate_only)

    def settings(self, sim: Simulator) -> Any:
        """The lent grants that changed since they were shipped (an expiry forced early)."""
        core: FcmCore = _core(sim, "fcm", FcmCore)
        changed = []
        for token, shipped in self.lent.items():
            grant = core.tokens.get(token)
            expires = grant.expires_at if grant is not None else None
            if expires != shipped:
                self.lent[token] = expires
                changed.append((token, grant))
        return changed or None

    def apply_settings(self, sim: Simulator, data: Any) -> None:
        if self.split is not None:
            for token, grant in data:
                self.split.grants.remember(token, grant)


# -- the table ---------------------------------------------------------------------------


class ProviderWorkers(Protocol):
    """One provider's side of ``--workers N``."""

    provider: str

    def is_local(self, req: Request) -> bool:
        """Whether a worker answers ``req`` itself (else the primary does)."""
        ...

    def worker_handler(self, handler: Handler, link: WorkerLink) -> Handler:
        """The part's handler as a worker runs it (deliveries and decisions to the primary)."""
        ...

    def settings(self, sim: Simulator) -> Any:
        """What the primary ships when it changes (``None``: nothing now)."""
        ...

    def apply_settings(self, sim: Simulator, data: Any) -> None: ...


def provider_table() -> dict[str, ProviderWorkers]:
    """A fresh table (the FCM side remembers which access tokens it lent)."""
    table: list[ProviderWorkers] = [ApnsWorkers(), FcmWorkers(), WebPushWorkers()]
    return {p.provider: p for p in table}


# forwarded deliveries, by route: (simulator, the primary's device, payload)
DELIVERIES: dict[str, Callable[[Simulator, Device, Any], None]] = {
    "apns": ApnsWorkers.deliver,
    "webpush": WebPushWorkers.deliver,
    "registry": lambda sim, dev, entry: sim.registry.deliver(dev, entry),
}

# a worker found a token dead while looking it up (a Web Push subscription's lifetime)
UNINSTALLS: dict[str, Callable[[Simulator, Device, str, str], None]] = {
    "webpush": WebPushWorkers.uninstall,
}
