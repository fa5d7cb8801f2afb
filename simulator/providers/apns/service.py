"""The APNs service: both environments' cores and listener options, keys, certificates, settings.

:class:`ApnsService` is built from an :class:`ApnsHost` (what it reads of the simulator:
the state directory, clock, stats, device registry, a seeded RNG and whether the
listeners share their ports with worker processes). Its control routes are in
:mod:`simulator.providers.apns.control`; :mod:`simulator.providers.apns.wiring` hands
the whole to the composition root.

Settings (``GET`` / ``PATCH /_sim/apns/config``): the operator switches of
:class:`~simulator.providers.apns.core.ApnsConfig` (both environments, or
``{"environment": "sandbox", ...}`` for one) plus ``idle_timeout`` (seconds, ``null`` for
none), ``initial_streams`` (the MAX_CONCURRENT_STREAMS a new connection starts with,
APNs' 1 by default) and ``strict_before_ack`` (false: a limit binds once the client has
acknowledged it, and streams opened in a first flight before the client could read it are
served; true: streams over a limit not yet acknowledged are refused, as clients such as
h2load that burst on connect then see).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from simulator.faults.auth import AuthPolicy
from simulator.parts import PartHost
from simulator.providers.apns.auth import ProviderTokenVerifier, SigningKey, load_key_file
from simulator.providers.apns.certs import mint_push_certificate
from simulator.providers.apns.core import (
    IDLE_DEBUG,
    SHUTDOWN_DEBUG,
    STREAMS_VIOLATED_DEBUG,
    ApnsConfig,
    ApnsCore,
    ApnsState,
)
from simulator.server.listener import ListenerOptions
from simulator.state.credentials import Credentials
from simulator.state.devices import Device

DEFAULT_IDLE_TIMEOUT = 3600.0
MAX_STREAMS = 2**31 - 1
# listener name -> environment
LISTENERS = {"apns": "production", "apns_sandbox": "sandbox"}


class ApnsHost(PartHost, Protocol):
    """What the APNs service reads of the simulator beyond :class:`PartHost`."""

    @property
    def state_dir(self) -> Path: ...

    @property
    def share_ports(self) -> bool:
        """SO_REUSEPORT on the APNs listeners (``--workers N`` binds one port N times)."""
        ...


# -- settings: one validator per field (an error message, or None), one way to apply it -------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _stream_count(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_STREAMS:
        return None
    return f"expected 1 to {MAX_STREAMS}"


def _non_negative(value: Any) -> str | None:
    return None if _number(value) and not value < 0 else "expected a non-negative number"


def _max_streams(value: Any) -> str | None:
    problem = _non_negative(value)
    if problem is None and not 1 <= value <= MAX_STREAMS:
        return f"expected 1 to {MAX_STREAMS}"
    return problem


def _idle_timeout(value: Any) -> str | None:
    if value is None or (_number(value) and not value <= 0):
        return None
    return "expected a positive number of seconds or null"


def _fail_with(value: Any) -> str | None:
    return None if value in (None, 500, 503) else "expected 500, 503 or null"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "initial_streams": _stream_count,
    "idle_timeout": _idle_timeout,
    "max_concurrent_streams": _max_streams,
    "token_update_min_interval": _non_negative,
    "device_rate": _non_negative,
    "device_burst": _non_negative,
    "fail_with": _fail_with,
    "draining": _flag,
    "narrow_after_rejection": _flag,
    "strict_before_ack": _flag,
}

# settings of the listener rather than the core (applied to ListenerOptions)
_OPTION_SETTERS: dict[str, Callable[[ListenerOptions, Any], None]] = {
    "initial_streams": lambda opts, v: setattr(opts, "max_concurrent_streams", v),
    "idle_timeout": lambda opts, v: setattr(opts, "idle_timeout", None if v is None else float(v)),
    "strict_before_ack": lambda opts, v: setattr(opts, "strict_before_ack", v),
}
_CONFIG_CASTS: dict[str, Callable[[Any], Any]] = {"max_concurrent_streams": int}


def _unknown(name: str) -> str:
    known = {f.name for f in fields(ApnsConfig)} - {"environment"}
    expected = ", ".join(sorted(known | {"idle_timeout", "strict_before_ack"}))
    return f"{name}: unknown setting (expected one of {expected}, initial_streams)"


def check_settings(body: dict[str, Any]) -> str | None:
    """The first bad setting in a PATCH body, as ``"field: what was expected"``."""
    known = {f.name for f in fields(ApnsConfig)} | set(_OPTION_SETTERS)
    for name, value in body.items():
        if name == "environment":
            continue
        if name not in known:
            return _unknown(name)
        check = VALIDATORS.get(name)
        problem = check(value) if check is not None else None
        if problem is not None:
            return f"{name}: {problem}"
    return None


class ApnsService:
    """Both APNs environments of one simulator."""

    def __init__(self, host: ApnsHost, creds: Credentials) -> None:
        self.state_dir = host.state_dir
        self.registry = host.registry
        self.keys_dir = host.state_dir / "apns" / "keys"
        default = SigningKey(
            creds.apns.key_id,
            creds.apns.team_id,
            creds.apns.public_key(),
            frozenset({creds.apns.bundle_id}),
        )
        self.verifier = ProviderTokenVerifier([default], loader=self._load_key)
        for path in sorted(self.keys_dir.glob("*.json")) if self.keys_dir.is_dir() else []:
            key = load_key_file(str(path))
            if key is not None:
                self.verifier.add_key(key)
        self.state = ApnsState(self.verifier)
        self.rng = rng = host.fork_rng()
        self.cores = {
            env: ApnsCore(
                host.registry,
                self.verifier,
                host.clock,
                host.stats,
                ApnsConfig(env),
                state=self.state,
                rng=random.Random(rng.random()),
            )
            for env in LISTENERS.values()
        }
        self.options = {
            env: ListenerOptions(
                max_concurrent_streams=1,  # until the first valid token or certificate
                stream_ceiling=self.cores[env].config.max_concurrent_streams,
                stream_violation_debug=STREAMS_VIOLATED_DEBUG,
                idle_timeout=DEFAULT_IDLE_TIMEOUT,
                idle_debug_data=IDLE_DEBUG,
                shutdown_debug_data=SHUTDOWN_DEBUG,
                reuse_port=host.share_ports,  # ``--workers N`` binds one port from N processes
            )
            for env in LISTENERS.values()
        }

    def _load_key(self, kid: str) -> SigningKey | None:
        if not kid.isalnum():
            return None
        return load_key_file(str(self.keys_dir / f"{kid}.json"))

    def listeners(self) -> dict[str, tuple[ApnsCore, ListenerOptions]]:
        """Listener name -> (core, options), for both environments."""
        return {name: (self.cores[env], self.options[env]) for name, env in LISTENERS.items()}

    def on_online(self, dev: Device) -> None:
        self.cores["sandbox" if dev.environment == "sandbox" else "production"].flush_stored(dev)

    def follow_auth(self, policy: AuthPolicy) -> None:
        """Provider-token expiry enforced (the policy's max age) or relaxed (never expires)."""
        max_age = policy.apns_token_max_age
        self.verifier.max_age = max_age if max_age is not None else float("inf")

    # -- keys and certificates ------------------------------------------------------

    def mint_key(
        self, team_id: str | None, bundle_ids: list[str], environment: str
    ) -> dict[str, Any]:
        alphabet = string.ascii_uppercase + string.digits
        kid = "".join(self.rng.choice(alphabet) for _ in range(10))
        team = team_id or "".join(self.rng.choice(alphabet) for _ in range(10))
        private = ec.generate_private_key(ec.SECP256R1())
        key = SigningKey(kid, team, private.public_key(), frozenset(bundle_ids), environment)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        p8 = self.keys_dir / f"AuthKey_{kid}.p8"
        p8.write_bytes(pem)
        p8.chmod(0o600)
        (self.keys_dir / f"{kid}.json").write_text(json.dumps(key.to_json(), indent=2))
        self.verifier.add_key(key)
        return {
            "key_id": kid,
            "team_id": team,
            "bundle_ids": sorted(key.bundle_ids),
            "environment": environment,
            "p8": pem.decode(),
            "key_file": str(p8.resolve()),
        }

    def mint_certificate(self, bundle_id: str, environment: str) -> dict[str, Any]:
        cert_pem, key_pem = mint_push_certificate(
            self.state_dir, bundle_id, environment, self.verifier.owner_of(bundle_id)
        )
        certs_dir = self.state_dir / "apns" / "certs"
        certs_dir.mkdir(parents=True, exist_ok=True)
        n = len(list(certs_dir.glob("*.pem"))) + 1
        pem_file = certs_dir / f"{bundle_id}-{environment}-{n}.pem"
        pem_file.write_bytes(cert_pem + key_pem)
        pem_file.chmod(0o600)
        return {
            "bundle_id": bundle_id,
            "environment": environment,
            "cert_pem": cert_pem.decode(),
            "key_pem": key_pem.decode(),
            "pem_file": str(pem_file.resolve()),
        }

    def expire_token(self, dev: Device) -> str:
        """The device's token expires (410 ExpiredToken from now on); returns the token."""
        token = dev.token
        self.registry.uninstall(dev.id, cause="token_expired")
        self.state.expired_tokens.add(token)
        return token

    # -- settings -----------------------------------------------------------------------

    def config_view(self) -> dict[str, Any]:
        return {
            env: {
                **asdict(core.config),
                "idle_timeout": self.options[env].idle_timeout,
                "initial_streams": self.options[env].max_concurrent_streams,
                "strict_before_ack": self.options[env].strict_before_ack,
            }
            for env, core in self.cores.items()
        }

    def update_config(self, body: dict[str, Any]) -> str | None:
        """Apply a PATCH (all or nothing); returns an error message naming the field, or
        ``None``."""
        envs = list(self.cores)
        if "environment" in body:
            if body["environment"] not in self.cores:
                return "environment: expected 'production' or 'sandbox'"
            envs = [body["environment"]]
        problem = check_settings(body)
        if problem is not None:
            return problem
        changes = {k: v for k, v in body.items() if k != "environment"}
        for env in envs:
            for name, value in changes.items():
                set_option = _OPTION_SETTERS.get(name)
                if set_option is not None:
                    set_option(self.options[env], value)
                else:
                    cast = _CONFIG_CASTS.get(name)
                    setattr(self.cores[env].config, name, cast(value) if cast else value)
            # a new connection may hold open as many streams as it may be granted
            self.options[env].stream_ceiling = self.cores[env].config.max_concurrent_streams
        return None
