"""The config of a running simulator: its state directory's ``endpoints.json`` and the
credentials it minted beside it (``pushsim sender --simulator DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sender.config.checks import ConfigError, FileProblem, json_object, kind, url_problem
from sender.config.credentials import (
    check_ca_file,
    load_apns_key,
    load_service_account,
    load_vapid_file,
)
from sender.config.settings import KNOWN_PUSH_SERVICES, ApnsCredentials, SenderConfig
from sender.policy.endpoints import origin_of


def from_simulator_dir(state_dir: Path, db_path: Path, **overrides: Any) -> SenderConfig:
    """The config for a running simulator's state directory; :class:`ConfigError` names
    the file that is missing or damaged."""
    try:
        return _from_simulator_dir(state_dir, db_path, overrides)
    except FileProblem as exc:
        raise ConfigError(f"--simulator: {exc}") from None


def _from_simulator_dir(state_dir: Path, db_path: Path, overrides: dict[str, Any]) -> SenderConfig:
    ep_file = state_dir / "endpoints.json"
    endpoints = json_object(ep_file, str(ep_file))
    for key in ("apns", "apns_sandbox", "fcm", "oauth_token_uri"):
        if key in endpoints and endpoints[key] is not None:
            problem = url_problem(endpoints[key], allow_path=key == "oauth_token_uri")
            if problem:
                raise FileProblem(f"'{ep_file}': {key}: {problem}")
    if "apns" not in endpoints:
        raise FileProblem(
            f"'{ep_file}': apns: expected a URL (is this a simulator's endpoints.json?)"
        )
    meta_file = state_dir / "apns" / "apns.json"
    meta = json_object(meta_file, str(meta_file))
    for key in ("key_id", "team_id", "bundle_id"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            raise FileProblem(f"'{meta_file}': {key}: expected a non-empty string")
    key_file = state_dir / "apns" / f"AuthKey_{meta['key_id']}.p8"
    key = load_apns_key(key_file, str(key_file))
    apns = ApnsCredentials(meta["key_id"], meta["team_id"], meta["bundle_id"], key)
    sa_file = state_dir / "fcm" / "service-account.json"
    sa = load_service_account(sa_file, str(sa_file)) if sa_file.exists() else None
    if sa is not None and endpoints.get("oauth_token_uri"):
        sa["token_uri"] = endpoints["oauth_token_uri"]
    vapid_file = state_dir / "webpush" / "vapid.json"
    vapid = load_vapid_file(vapid_file, str(vapid_file)) if vapid_file.exists() else None
    ca = endpoints.get("ca_file")
    if ca is not None and not isinstance(ca, str):
        raise FileProblem(f"'{ep_file}': ca_file: expected a path, got {kind(ca)}")
    ca_file = ca or str(state_dir / "ca.pem")
    urls = [endpoints.get(k) for k in ("apns", "apns_sandbox", "fcm")]
    if any(isinstance(u, str) and u.startswith("https:") for u in urls):
        check_ca_file(Path(ca_file), ca_file)
    overrides.setdefault("webpush_origins", _webpush_origins(endpoints))
    return SenderConfig(
        apns_url=endpoints["apns"],
        apns_sandbox_url=endpoints.get("apns_sandbox"),
        apns=apns,
        fcm_url=endpoints.get("fcm"),
        fcm_service_account=sa,
        vapid=vapid,
        ca_file=ca_file,
        db_path=db_path,
        **{
            "apns_channels_url": endpoints.get("apns_channels"),
            "apns_channels_sandbox_url": endpoints.get("apns_channels_sandbox"),
            **overrides,
        },
    )


def _webpush_origins(endpoints: dict[str, Any]) -> tuple[str, ...]:
    """The browsers' push services and the simulator's own Web Push origin."""
    own = endpoints.get("webpush")
    extra = (origin_of(own),) if isinstance(own, str) and origin_of(own) else ()
    return KNOWN_PUSH_SERVICES + extra
