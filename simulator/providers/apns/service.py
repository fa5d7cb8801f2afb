"""APNs wiring: both environments' cores and listener options, the online hook, control routes.

Control routes (JSON, under the control URL):

- ``POST /_sim/apns/keys`` ``{"team_id"?, "bundle_ids"?, "environment"?}``: mint another
  provider-token signing key (a new team unless ``team_id`` names a known one); returns
  ``key_id``, ``team_id``, ``bundle_ids``, ``environment`` and the ``.p8`` PEM (also written
  to ``DIR/apns/keys/AuthKey_<KEYID>.p8``). ``GET`` lists keys; ``DELETE
  /_sim/apns/keys/{key_id}`` revokes one (its tokens answer 403 Forbidden).
- ``POST /_sim/apns/certificates`` ``{"bundle_id", "environment": "production"|"sandbox"|"both"}``:
  mint a push client certificate; returns ``cert_pem``, ``key_pem`` and ``pem_file`` (cert
  and key in one file, as aioapns' ``client_cert`` wants).
- ``POST /_sim/apns/devices/{id}/expire``: the device token expires (410 ExpiredToken).
- ``GET`` / ``PATCH /_sim/apns/config``: the operator switches of :class:`ApnsConfig`
  (both environments, or ``{"environment": "sandbox", ...}`` for one) plus
  ``idle_timeout`` (seconds, ``null`` for none) and ``initial_streams`` (the
  MAX_CONCURRENT_STREAMS a new connection starts with; APNs' 1 by default: clients such
  as h2load that open many streams before reading the server's SETTINGS need more).
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from simulator.providers.apns.auth import ProviderTokenVerifier, SigningKey, load_key_file
from simulator.providers.apns.certs import CERT_ENVIRONMENTS, mint_push_certificate
from simulator.providers.apns.core import (
    IDLE_DEBUG,
    SHUTDOWN_DEBUG,
    ApnsConfig,
    ApnsCore,
    ApnsState,
)
from simulator.providers.apns.headers import valid_bundle_id
from simulator.server.protocol import ListenerOptions
from simulator.state.credentials import Credentials
from simulator.state.devices import Device

if TYPE_CHECKING:
    from simulator.app import Simulator

DEFAULT_IDLE_TIMEOUT = 3600.0
_KEY_ENVS = ("production", "sandbox", "both")


class ApnsService:
    """Both APNs environments of one simulator."""

    def __init__(self, sim: Simulator, creds: Credentials) -> None:
        self.sim = sim
        self.keys_dir = sim.state_dir / "apns" / "keys"
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
        rng = random.Random(sim.rng.random())
        self.rng = rng
        self.cores = {
            env: ApnsCore(
                sim.registry,
                self.verifier,
                sim.clock,
                sim.stats,
                ApnsConfig(env),
                state=self.state,
                rng=random.Random(rng.random()),
            )
            for env in ("production", "sandbox")
        }
        self.options = {
            env: ListenerOptions(
                max_concurrent_streams=1,  # until the first valid token or certificate
                idle_timeout=DEFAULT_IDLE_TIMEOUT,
                idle_debug_data=IDLE_DEBUG,
                shutdown_debug_data=SHUTDOWN_DEBUG,
                reuse_port=sim.share_ports,  # ``--workers N`` binds one port from N processes
            )
            for env in ("production", "sandbox")
        }

    def _load_key(self, kid: str) -> SigningKey | None:
        if not kid.isalnum():
            return None
        return load_key_file(str(self.keys_dir / f"{kid}.json"))

    def listeners(self) -> dict[str, tuple[Any, ListenerOptions]]:
        return {
            "apns": (self.cores["production"], self.options["production"]),
            "apns_sandbox": (self.cores["sandbox"], self.options["sandbox"]),
        }

    def on_online(self, dev: Device) -> None:
        self.cores["sandbox" if dev.environment == "sandbox" else "production"].flush_stored(dev)

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
            self.sim.state_dir, bundle_id, environment, self.verifier.owner_of(bundle_id)
        )
        certs_dir = self.sim.state_dir / "apns" / "certs"
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

    def config_view(self) -> dict[str, Any]:
        return {
            env: {
                **asdict(core.config),
                "idle_timeout": self.options[env].idle_timeout,
                "initial_streams": self.options[env].max_concurrent_streams,
            }
            for env, core in self.cores.items()
        }

    def update_config(self, body: dict[str, Any]) -> str | None:
        """Apply a PATCH; returns an error message naming the field, or ``None``."""
        envs = list(self.cores)
        if "environment" in body:
            if body["environment"] not in self.cores:
                return "environment: expected 'production' or 'sandbox'"
            envs = [body["environment"]]
        numeric = {
            "max_concurrent_streams",
            "token_update_min_interval",
            "device_rate",
            "device_burst",
        }
        known = {f.name for f in fields(ApnsConfig)} - {"environment"}
        changes: dict[str, Any] = {}
        for name, value in body.items():
            if name == "environment":
                continue
            if name == "initial_streams":
                if (
                    not isinstance(value, int)
                    or isinstance(value, bool)
                    or not 1 <= value <= 2**31 - 1
                ):
                    return "initial_streams: expected 1 to 2147483647"
            elif name == "idle_timeout":
                if value is not None and (
                    not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0
                ):
                    return "idle_timeout: expected a positive number of seconds or null"
            elif name not in known:
                expected = ", ".join(sorted(known | {"idle_timeout"}))
                return f"{name}: unknown setting (expected one of {expected}, initial_streams)"
            elif name in numeric:
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    return f"{name}: expected a non-negative number"
                if name == "max_concurrent_streams" and not 1 <= value <= 2**31 - 1:
                    return "max_concurrent_streams: expected 1 to 2147483647"
            elif name == "fail_with":
                if value not in (None, 500, 503):
                    return "fail_with: expected 500, 503 or null"
            elif name == "draining":
                if not isinstance(value, bool):
                    return "draining: expected true or false"
            changes[name] = value
        for env in envs:
            for name, value in changes.items():
                if name == "initial_streams":
                    self.options[env].max_concurrent_streams = value
                elif name == "idle_timeout":
                    self.options[env].idle_timeout = None if value is None else float(value)
                elif name == "max_concurrent_streams":
                    self.cores[env].config.max_concurrent_streams = int(value)
                else:
                    setattr(self.cores[env].config, name, value)
        return None


# -- control routes -------------------------------------------------------------------


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        raw = await request.read()
        data = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def control_routes(service: ApnsService) -> Any:
    async def post_key(request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return _error("expected a JSON object")
        team = body.get("team_id")
        if team is not None and (
            not isinstance(team, str) or len(team) != 10 or not team.isalnum()
        ):
            return _error("team_id: expected 10 letters or digits")
        bundles = body.get("bundle_ids", [])
        if not isinstance(bundles, list) or not all(
            isinstance(b, str) and valid_bundle_id(b) for b in bundles
        ):
            return _error("bundle_ids: expected a list of bundle ids like com.example.app")
        env = body.get("environment", "both")
        if env not in _KEY_ENVS:
            return _error("environment: expected 'production', 'sandbox' or 'both'")
        return web.json_response(service.mint_key(team, bundles, env), status=201)

    async def list_keys(request: web.Request) -> web.Response:
        v = service.verifier
        keys = [
            {
                **{k: x for k, x in key.to_json().items() if k != "public_key"},
                "revoked": key.key_id in v.revoked,
            }
            for key in v.keys.values()
        ]
        return web.json_response({"keys": keys, "default_team": v.default_team})

    async def delete_key(request: web.Request) -> web.Response:
        kid = request.match_info["key_id"]
        if not service.verifier.revoke(kid):
            return _error(f"no key {kid!r}", 404)
        return web.json_response({"key_id": kid, "revoked": True})

    async def post_cert(request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return _error("expected a JSON object")
        bundle = body.get("bundle_id")
        if not isinstance(bundle, str) or not valid_bundle_id(bundle):
            return _error("bundle_id: expected a bundle id like com.example.app")
        env = body.get("environment", "production")
        if env not in CERT_ENVIRONMENTS:
            return _error("environment: expected 'production', 'sandbox' or 'both'")
        return web.json_response(service.mint_certificate(bundle, env), status=201)

    async def expire_device(request: web.Request) -> web.Response:
        dev = service.sim.registry.devices.get(request.match_info["device_id"])
        if dev is None or dev.provider != "apns":
            return _error(f"no APNs device {request.match_info['device_id']!r}", 404)
        token = dev.token
        service.sim.registry.uninstall(dev.id, cause="token_expired")
        service.state.expired_tokens.add(token)
        return web.json_response({"device_id": dev.id, "token": token, "expired": True})

    async def get_config(request: web.Request) -> web.Response:
        return web.json_response(service.config_view())

    async def patch_config(request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return _error("expected a JSON object")
        err = service.update_config(body)
        if err:
            return _error(err)
        return web.json_response(service.config_view())

    def register(app: web.Application) -> None:
        app.router.add_post("/_sim/apns/keys", post_key)
        app.router.add_get("/_sim/apns/keys", list_keys)
        app.router.add_delete("/_sim/apns/keys/{key_id}", delete_key)
        app.router.add_post("/_sim/apns/certificates", post_cert)
        app.router.add_post("/_sim/apns/devices/{device_id}/expire", expire_device)
        app.router.add_get("/_sim/apns/config", get_config)
        app.router.add_patch("/_sim/apns/config", patch_config)

    return register


def install(sim: Simulator, creds: Credentials) -> ApnsService:
    """Build both environments, hook them into ``sim`` and return the service."""
    service = ApnsService(sim, creds)
    sim.online_hooks["apns"] = service.on_online
    sim.control_extensions.append(control_routes(service))
    return service
