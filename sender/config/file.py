"""The sender's config file (``pushsim sender --config FILE``): any provider endpoints, any
credentials. :func:`from_config_file` raises :class:`ConfigError` with one line naming the
file, the field and what was expected (``sender.yaml: apns.key_file: no such file 'x.p8'``).

Each section is a table of its fields, in the order they are checked, each with the
validator that reads it; a section's builder turns the checked values into the
:class:`SenderConfig` fields it sets.

Format
======

YAML, or JSON when the name ends in ``.json``. Relative paths count from the directory the
file is in. Every provider section is optional; a provider whose section is absent (or
``null``) is disabled: the sender's API refuses notifications to it with a 400 naming the
provider. At least one provider must be configured. Unknown fields are errors::

    apns:
      url: https://api.push.apple.com            # scheme://host[:port]
      sandbox_url: https://api.sandbox.push.apple.com   # optional: for sandbox tokens
      key_file: AuthKey_ABC123DEFG.p8            # the .p8 token-signing key (EC P-256)
      key_id: ABC123DEFG                         # default: from the name AuthKey_<KEYID>.p8
      team_id: DEF123GHIJ
      topic: com.example.app                     # the app's bundle id (alias: bundle_id)
      ca_file: ca.pem                            # optional: trust this CA (default: system)
    fcm:
      url: https://fcm.googleapis.com
      service_account_file: service-account.json # its token_uri is the OAuth endpoint
      ca_file: ca.pem                            # optional; also used for the token_uri
    webpush:
      vapid_file: vapid.json                     # {"private_key": PEM, "public_key": b64url,
                                                 #  "subject"?: "mailto:..."}
      # or: vapid_private_key_file: vapid.pem    # PEM, or the raw base64url private key
      #     subject: mailto:ops@example.com      # required with vapid_private_key_file
      ca_file: ca.pem                            # optional
      allowed_origins: [https://push.example.com] # optional: where endpoints may be
                                                 # (default: the browsers' push services)
    sender:                                      # optional; flags given on the command line win
      db: sender.db                              # default: sender.db beside this file
      deadline: 300                              # seconds until a delivery is dead-lettered
      durability: process                        # process | power
      max_attempts: 12

Each provider section also takes the dispatch limits ``concurrency`` (requests in flight),
``rate`` (requests per second, 0 = unlimited), ``burst`` and ``max_connections``
(defaults: APNs 512 in flight; FCM 512 in flight, 9,000/s with bursts of 2,000; Web Push
256 in flight; 2 connections each).

A ``ca_file`` replaces the system's trust store for that provider (for Web Push: for every
push service a subscription names), so leave it out for the real providers. Notifications
addressed to a user fan out to that user's registrations; one on a provider that is not
configured is recorded as failed (``<provider> not configured``) rather than refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sender.config.checks import (
    ConfigError,
    FileProblem,
    first_line,
    kind,
    read_file,
    subject_problem,
)
from sender.config.credentials import (
    load_apns_key,
    load_service_account,
    load_vapid_file,
    load_vapid_private_key,
)
from sender.config.section import (
    Section,
    Validator,
    ca_file_field,
    file_field,
    number_field,
    url_field,
)
from sender.config.settings import (
    PROVIDERS,
    ApnsCredentials,
    ProviderLimits,
    SenderConfig,
    default_limits,
)
from sender.policy.endpoints import entry_problem

_APPLE_ID = re.compile(r"^[A-Za-z0-9]{10}$")
_AUTH_KEY_NAME = re.compile(r"^AuthKey_([A-Za-z0-9]{10})\.p8$")
_TOPIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]*$")


def _apns_key(s: Section, key: str, _: dict[str, Any]) -> tuple[str, tuple[Path, str]]:
    """The key's PEM text, and where it is (its name may carry the key id)."""
    where = s.path(key, required=True)
    assert where is not None
    return s.load(key, load_apns_key, required=True), where


def _apns_key_id(s: Section, key: str, got: dict[str, Any]) -> str:
    """Given, or read from the key file's name ``AuthKey_<KEYID>.p8``; both must agree."""
    path, shown = got["key_file"][1]
    named = _AUTH_KEY_NAME.match(path.name)
    key_id = s.string(key)
    if key_id is None:
        if named is None:
            raise s.fail(key, "required (the key file is not named AuthKey_<KEYID>.p8)")
        return named.group(1)
    if not _APPLE_ID.match(key_id):
        raise s.fail(key, f"expected the 10-character key id, got {key_id!r}")
    if named is not None and named.group(1) != key_id:
        raise s.fail(key, f"{key_id!r}, but the key file '{shown}' is the key {named.group(1)!r}")
    return key_id


def _apns_team_id(s: Section, key: str, _: dict[str, Any]) -> str:
    team_id = s.string(key, required=True)
    assert team_id is not None
    if not _APPLE_ID.match(team_id):
        raise s.fail(key, f"expected the 10-character team id, got {team_id!r}")
    return team_id


def _apns_topic(s: Section, key: str, _: dict[str, Any]) -> str:
    """``topic``, or its alias ``bundle_id`` (the app's bundle id)."""
    topic, bundle = s.string(key), s.string("bundle_id")
    if topic is not None and bundle is not None and topic != bundle:
        raise s.fail("bundle_id", f"expected the same as topic ({topic!r}) or only one")
    topic = topic or bundle
    if topic is None:
        raise s.fail(key, "required (the app's bundle id; alias bundle_id)")
    if not _TOPIC.match(topic):
        raise s.fail(key, f"expected a bundle id such as com.example.app, got {topic!r}")
    return topic


def _vapid_keys(s: Section, key: str, _: dict[str, Any]) -> dict[str, Any]:
    """The key pair from ``vapid_file``, or from ``vapid_private_key_file`` plus ``subject``."""
    if s.has(key) == s.has("vapid_private_key_file"):
        raise s.fail(key, "expected exactly one of vapid_file, vapid_private_key_file")
    subject = s.string("subject")
    if subject is not None and subject_problem(subject):
        raise s.fail("subject", subject_problem(subject))
    if s.has(key):
        vapid: dict[str, Any] = s.load(key, load_vapid_file, required=True)
    else:
        vapid = s.load("vapid_private_key_file", load_vapid_private_key, required=True)
        if subject is None:
            raise s.fail("subject", "required with vapid_private_key_file (mailto: or https:)")
    if subject is not None:
        vapid["subject"] = subject
    return vapid


def _db(s: Section, key: str, _: dict[str, Any]) -> Path | None:
    where = s.path(key)
    return None if where is None else where[0]


def _durability(s: Section, key: str, _: dict[str, Any]) -> str | None:
    durability = s.choice(key, ("process", "power"))
    return None if durability is None else ("FULL" if durability == "power" else "NORMAL")


_LIMITS: dict[str, Validator | None] = {
    "concurrency": number_field(low=1, integer=True),
    "rate": number_field(low=0),
    "burst": number_field(low=1),
    "max_connections": number_field(low=1, integer=True),
}


# -- builders: a section's checked values -> the SenderConfig fields it sets -----------


def _provider(name: str, got: dict[str, Any], out: dict[str, Any]) -> None:
    """The dispatch limits (the defaults for what is absent) and the CA of a provider."""
    default: ProviderLimits = out["limits"][name]
    concurrency, rate, burst = got["concurrency"], got["rate"], got["burst"]
    out["limits"][name] = ProviderLimits(
        concurrency=default.concurrency if concurrency is None else concurrency,
        rate=default.rate if rate is None else rate,
        burst=burst if burst is not None else (default.burst if rate is None else None),
        max_connections=(
            default.max_connections if got["max_connections"] is None else got["max_connections"]
        ),
    )
    out["ca_files"][name] = got["ca_file"]


def _apns(got: dict[str, Any], out: dict[str, Any]) -> None:
    out["apns_url"] = got["url"]
    out["apns_sandbox_url"] = got["sandbox_url"]
    pem = got["key_file"][0]
    out["apns"] = ApnsCredentials(got["key_id"], got["team_id"], got["topic"], pem)
    _provider("apns", got, out)


def _fcm(got: dict[str, Any], out: dict[str, Any]) -> None:
    out["fcm_url"] = got["url"]
    out["fcm_service_account"] = got["service_account_file"]
    _provider("fcm", got, out)


def _webpush(got: dict[str, Any], out: dict[str, Any]) -> None:
    out["vapid"] = got["vapid_file"]
    if got["allowed_origins"] is not None:
        out["webpush_origins"] = got["allowed_origins"]
    _provider("webpush", got, out)


def _allowed_origins(s: Section, key: str, _: dict[str, Any]) -> tuple[str, ...] | None:
    """The push-service origins endpoints may be on (sender.policy.endpoints)."""
    value = s.data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise s.fail(key, f"expected a list of origins (https://host[:port]), got {kind(value)}")
    for entry in value:
        problem = entry_problem(entry)
        if problem:
            raise s.fail(key, problem)
    return tuple(v.strip().rstrip("/") for v in value)


_SENDER_FIELDS = {
    "db": "db_path",
    "deadline": "deadline",
    "durability": "synchronous",
    "max_attempts": "max_attempts",
}


def _sender(got: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in got.items():
        if value is not None:
            out[_SENDER_FIELDS[key]] = value


@dataclass(frozen=True)
class _Spec:
    # Every field the section takes, in the order they are checked; None: read together
    # with an earlier field (bundle_id with topic).
    fields: dict[str, Validator | None]
    build: Callable[[dict[str, Any], dict[str, Any]], None]


_SECTIONS: dict[str, _Spec] = {
    "apns": _Spec(
        {
            "url": url_field(required=True),
            "sandbox_url": url_field(),
            "key_file": _apns_key,
            "key_id": _apns_key_id,
            "team_id": _apns_team_id,
            "topic": _apns_topic,
            "bundle_id": None,
            "ca_file": ca_file_field,
            **_LIMITS,
        },
        _apns,
    ),
    "fcm": _Spec(
        {
            "url": url_field(required=True),
            "service_account_file": file_field(load_service_account),
            "ca_file": ca_file_field,
            **_LIMITS,
        },
        _fcm,
    ),
    "webpush": _Spec(
        {
            "vapid_file": _vapid_keys,
            "vapid_private_key_file": None,
            "subject": None,
            "ca_file": ca_file_field,
            "allowed_origins": _allowed_origins,
            **_LIMITS,
        },
        _webpush,
    ),
    "sender": _Spec(
        {
            "db": _db,
            "deadline": number_field(low=0, above=True),
            "durability": _durability,
            "max_attempts": number_field(low=1, integer=True),
        },
        _sender,
    ),
}


def _check(s: Section, spec: _Spec) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for key, validator in spec.fields.items():
        if validator is not None:
            got[key] = validator(s, key, got)
    return got


# -- the file ----------------------------------------------------------------------------


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's top-level mapping (YAML, or JSON for ``*.json``)."""
    source = str(path)
    try:
        raw = read_file(path, source)
    except FileProblem as exc:
        raise ConfigError(f"--config: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: expected UTF-8 text") from None
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise ConfigError(f"{source}: invalid JSON: {first_line(exc)}") from None
    except Exception as exc:  # yaml.YAMLError and its kin
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise ConfigError(f"{source}: {line}invalid YAML: {problem}") from None
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{source}: expected a mapping with apns, fcm, webpush, sender sections,"
            f" got {kind(doc)}"
        )
    return doc


def _sections(path: Path, base: Path) -> dict[str, Section]:
    """The file's sections that are present, each checked for unknown fields."""
    source = str(path)
    doc = read_config_file(path)
    for key in doc:
        if key not in _SECTIONS:
            raise ConfigError(
                f"{source}: {key}: unknown section (expected apns, fcm, webpush, sender)"
            )
    sections: dict[str, Section] = {}
    for name, spec in _SECTIONS.items():
        data = doc.get(name)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {name}: expected a mapping, got {kind(data)}")
        sections[name] = Section(source, base, name, data, tuple(spec.fields))
    if not any(p in sections for p in PROVIDERS):
        raise ConfigError(f"{source}: expected at least one of the sections apns, fcm, webpush")
    return sections


def from_config_file(path: Path, **overrides: Any) -> SenderConfig:
    """The config a file describes; ``overrides`` (the command line's flags: ``db_path``,
    ``deadline``, ``synchronous``) win over the file's ``sender:`` section."""
    base = path.resolve().parent
    sections = _sections(path, base)
    fields: dict[str, Any] = {
        "apns_url": None,
        "apns_sandbox_url": None,
        "apns": None,
        "fcm_url": None,
        "fcm_service_account": None,
        "vapid": None,
        "ca_file": None,
        "limits": default_limits(),
        "ca_files": {},
        "db_path": base / "sender.db",
    }
    for name, s in sections.items():
        _SECTIONS[name].build(_check(s, _SECTIONS[name]), fields)
    settings = sections.get("sender")
    if settings is not None and "db_path" not in overrides and Path(fields["db_path"]).is_dir():
        raise settings.fail("db", f"expected a file, '{fields['db_path']}' is a directory")
    fields.update(overrides)
    return SenderConfig(**fields)
