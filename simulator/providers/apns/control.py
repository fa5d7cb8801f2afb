"""APNs control routes (JSON, under the control URL).

- ``POST /_sim/apns/keys`` ``{"team_id"?, "bundle_ids"?, "environment"?}``: mint another
  provider-token signing key (a new team unless ``team_id`` names a known one); returns
  ``key_id``, ``team_id``, ``bundle_ids``, ``environment`` and the ``.p8`` PEM (also written
  to ``DIR/apns/keys/AuthKey_<KEYID>.p8``). ``GET`` lists keys; ``DELETE
  /_sim/apns/keys/{key_id}`` revokes one (its tokens answer 403 Forbidden).
- ``POST /_sim/apns/certificates`` ``{"bundle_id", "environment": "production"|"sandbox"|"both"}``:
  mint a push client certificate; returns ``cert_pem``, ``key_pem`` and ``pem_file`` (cert
  and key in one file, as aioapns' ``client_cert`` wants).
- ``POST /_sim/apns/devices/{id}/expire``: the device token expires (410 ExpiredToken).
- ``GET`` / ``PATCH /_sim/apns/config``: the settings of
  :meth:`~simulator.providers.apns.service.ApnsService.update_config`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from simulator.providers.apns.certs import CERT_ENVIRONMENTS
from simulator.providers.apns.headers import valid_bundle_id
from simulator.providers.apns.service import ApnsService

SERVICE_KEY: web.AppKey[ApnsService] = web.AppKey("apns_service")
KEY_ENVIRONMENTS = ("production", "sandbox", "both")


def error_response(message: str, status: int = 400) -> web.Response:
    """The APNs control routes' error answer: ``{"error": message}``."""
    return web.json_response({"error": message}, status=status)


async def read_object(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON object (``{}`` for an empty body), None if it is not one."""
    try:
        raw = await request.read()
        data = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _key_problem(body: dict[str, Any]) -> str | None:
    team = body.get("team_id")
    if team is not None and (not isinstance(team, str) or len(team) != 10 or not team.isalnum()):
        return "team_id: expected 10 letters or digits"
    bundles = body.get("bundle_ids", [])
    if not isinstance(bundles, list) or not all(
        isinstance(b, str) and valid_bundle_id(b) for b in bundles
    ):
        return "bundle_ids: expected a list of bundle ids like com.example.app"
    if body.get("environment", "both") not in KEY_ENVIRONMENTS:
        return "environment: expected 'production', 'sandbox' or 'both'"
    return None


async def post_key(request: web.Request) -> web.Response:
    body = await read_object(request)
    if body is None:
        return error_response("expected a JSON object")
    problem = _key_problem(body)
    if problem is not None:
        return error_response(problem)
    service = request.app[SERVICE_KEY]
    key = service.mint_key(
        body.get("team_id"), body.get("bundle_ids", []), body.get("environment", "both")
    )
    return web.json_response(key, status=201)


async def list_keys(request: web.Request) -> web.Response:
    v = request.app[SERVICE_KEY].verifier
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
    if not request.app[SERVICE_KEY].verifier.revoke(kid):
        return error_response(f"no key {kid!r}", 404)
    return web.json_response({"key_id": kid, "revoked": True})


async def post_cert(request: web.Request) -> web.Response:
    body = await read_object(request)
    if body is None:
        return error_response("expected a JSON object")
    bundle = body.get("bundle_id")
    if not isinstance(bundle, str) or not valid_bundle_id(bundle):
        return error_response("bundle_id: expected a bundle id like com.example.app")
    env = body.get("environment", "production")
    if env not in CERT_ENVIRONMENTS:
        return error_response("environment: expected 'production', 'sandbox' or 'both'")
    cert = request.app[SERVICE_KEY].mint_certificate(bundle, env)
    return web.json_response(cert, status=201)


async def expire_device(request: web.Request) -> web.Response:
    service = request.app[SERVICE_KEY]
    dev = service.registry.devices.get(request.match_info["device_id"])
    if dev is None or dev.provider != "apns":
        return error_response(f"no APNs device {request.match_info['device_id']!r}", 404)
    token = service.expire_token(dev)
    return web.json_response({"device_id": dev.id, "token": token, "expired": True})


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE_KEY].config_view())


async def patch_config(request: web.Request) -> web.Response:
    body = await read_object(request)
    if body is None:
        return error_response("expected a JSON object")
    service = request.app[SERVICE_KEY]
    err = service.update_config(body)
    if err:
        return error_response(err)
    return web.json_response(service.config_view())


def register_control(app: web.Application, service: ApnsService) -> None:
    app[SERVICE_KEY] = service
    app.router.add_post("/_sim/apns/keys", post_key)
    app.router.add_get("/_sim/apns/keys", list_keys)
    app.router.add_delete("/_sim/apns/keys/{key_id}", delete_key)
    app.router.add_post("/_sim/apns/certificates", post_cert)
    app.router.add_post("/_sim/apns/devices/{device_id}/expire", expire_device)
    app.router.add_get("/_sim/apns/config", get_config)
    app.router.add_patch("/_sim/apns/config", patch_config)
