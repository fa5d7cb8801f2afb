"""Sender configuration: where the providers are, the credentials, and dispatch limits.

Two sources build the same :class:`SenderConfig`:

- :func:`from_simulator_dir` reads a simulator state directory (``endpoints.json`` plus the
  credentials minted beside it), so ``pushsim sender --simulator DIR`` needs nothing else.
- :func:`from_config_file` reads an explicit file (``pushsim sender --config FILE``), so the
  sender can be pointed at any provider endpoints with any credentials.

Either raises :class:`ConfigError` with one line naming the file, the field and what was
expected (``sender.yaml: apns.key_file: no such file 'x.p8'``).

Config file format
==================

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

import base64
import binascii
import contextlib
import json
import math
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushsim.b64 import b64url
from sender.config.settings import (
    PROVIDERS,
    ApnsCredentials,
    ProviderLimits,
    SenderConfig,
    default_limits,
)


class ConfigError(ValueError):
    """A configuration that cannot be used: one line naming where and what was expected."""


class _Bad(ValueError):
    """A loader's complaint; the caller prefixes where it came from (file and field)."""


# -- credential files (shared by both sources) -----------------------------------------


def _read(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _Bad(f"no such file '{shown}'") from None
    except IsADirectoryError:
        raise _Bad(f"expected a file, '{shown}' is a directory") from None
    except OSError as exc:
        raise _Bad(f"cannot read '{shown}': {exc.strerror or exc}") from None


def _json_object(path: Path, shown: str) -> dict[str, Any]:
    try:
        doc = json.loads(_read(path, shown))
    except (ValueError, RecursionError) as exc:
        raise _Bad(f"'{shown}': expected a JSON object: {_first_line(exc)}") from None
    if not isinstance(doc, dict):
        raise _Bad(f"'{shown}': expected a JSON object, got {_kind(doc)}")
    return doc


def _p256_private(pem: bytes) -> ec.EllipticCurvePrivateKey | None:
    try:
        key = serialization.load_pem_private_key(pem, None)
    except (ValueError, TypeError):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    return None


def _public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


def load_apns_key(path: Path, shown: str) -> str:
    """The PEM text of an APNs token-signing key (``AuthKey_<KEYID>.p8``)."""
    pem = _read(path, shown)
    if _p256_private(pem) is None:
        raise _Bad(f"'{shown}': expected an EC P-256 private key in PEM (an APNs .p8 auth key)")
    return pem.decode("ascii")


def load_service_account(path: Path, shown: str) -> dict[str, Any]:
    """A Google service-account file, checked for what the FCM client uses."""
    sa = _json_object(path, shown)
    if sa.get("type", "service_account") != "service_account":
        raise _Bad(f"'{shown}': type: expected service_account, got {sa.get('type')!r}")
    for name in ("project_id", "client_email", "private_key", "token_uri"):
        if not isinstance(sa.get(name), str) or not sa[name]:
            raise _Bad(f"'{shown}': {name}: expected a non-empty string")
    key: Any = None
    with contextlib.suppress(ValueError, TypeError, UnicodeError):
        key = serialization.load_pem_private_key(sa["private_key"].encode(), None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _Bad(f"'{shown}': private_key: expected an RSA private key in PEM")
    problem = _url_problem(sa["token_uri"], allow_path=True)
    if problem:
        raise _Bad(f"'{shown}': token_uri: {problem}")
    return sa


def load_vapid_file(path: Path, shown: str) -> dict[str, Any]:
    """``{"private_key": PEM, "public_key": base64url point, "subject"?}`` as the simulator
    writes it in ``webpush/vapid.json``."""
    doc = _json_object(path, shown)
    pem = doc.get("private_key")
    key = _p256_private(pem.encode()) if isinstance(pem, str) else None
    if key is None:
        raise _Bad(f"'{shown}': private_key: expected an EC P-256 private key in PEM")
    public = _public_b64(key)
    given = doc.get("public_key")
    if given is not None and given != public:
        raise _Bad(f"'{shown}': public_key: does not match private_key (expected {public})")
    subject = doc.get("subject")
    if subject is not None:
        problem = _subject_problem(subject)
        if problem:
            raise _Bad(f"'{shown}': subject: {problem}")
    out: dict[str, Any] = {"private_key": pem, "public_key": public}
    if subject:
        out["subject"] = subject
    return out


def load_vapid_private_key(path: Path, shown: str) -> dict[str, Any]:
    """A VAPID private key alone: PEM, or the raw 32-byte key in base64url (as web-push
    libraries print it). Returns ``{"private_key": PEM, "public_key": base64url}``."""
    raw = _read(path, shown)
    key = _p256_private(raw)
    if key is None:
        text = raw.strip()
        try:
            scalar = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            scalar = b""
        if len(scalar) == 32 and 0 < int.from_bytes(scalar, "big"):
            try:
                key = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
            except ValueError:
                key = None
    if key is None:
        raise _Bad(f"'{shown}': expected an EC P-256 private key (PEM, or 32 bytes in base64url)")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return {"private_key": pem, "public_key": _public_b64(key)}


def check_ca_file(path: Path, shown: str) -> None:
    _read(path, shown)
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError, OSError):
        raise _Bad(f"'{shown}': expected PEM CA certificates") from None


def _url_problem(value: Any, *, allow_path: bool = False) -> str:
    if not isinstance(value, str) or not value:
        return "expected a URL (https://host[:port])"
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        return f"expected a URL with a port 0-65535, got {value!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"expected an http:// or https:// URL, got {value!r}"
    if not allow_path and (parts.path not in ("", "/") or parts.query or parts.fragment):
        return f"expected scheme://host[:port] with no path, got {value!r}"
    return ""


def _subject_problem(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("mailto:", "https://")):
        return f"expected a mailto: or https: URI, got {value!r}"
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


# -- from a simulator state directory --------------------------------------------------


def from_simulator_dir(state_dir: Path, db_path: Path, **overrides: Any) -> SenderConfig:
    """The config for a running simulator's state directory; :class:`ConfigError` names
    the file that is missing or damaged."""
    try:
        return _from_simulator_dir(state_dir, db_path, overrides)
    except _Bad as exc:
        raise ConfigError(f"--simulator: {exc}") from None


def _from_simulator_dir(state_dir: Path, db_path: Path, overrides: dict[str, Any]) -> SenderConfig:
    ep_file = state_dir / "endpoints.json"
    endpoints = _json_object(ep_file, str(ep_file))
    for key in ("apns", "apns_sandbox", "fcm", "oauth_token_uri"):
        if key in endpoints and endpoints[key] is not None:
            problem = _url_problem(endpoints[key], allow_path=key == "oauth_token_uri")
            if problem:
                raise _Bad(f"'{ep_file}': {key}: {problem}")
    if "apns" not in endpoints:
        raise _Bad(f"'{ep_file}': apns: expected a URL (is this a simulator's endpoints.json?)")
    meta_file = state_dir / "apns" / "apns.json"
    meta = _json_object(meta_file, str(meta_file))
    for key in ("key_id", "team_id", "bundle_id"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            raise _Bad(f"'{meta_file}': {key}: expected a non-empty string")
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
        raise _Bad(f"'{ep_file}': ca_file: expected a path, got {_kind(ca)}")
    ca_file = ca or str(state_dir / "ca.pem")
    urls = [endpoints.get(k) for k in ("apns", "apns_sandbox", "fcm")]
    if any(isinstance(u, str) and u.startswith("https:") for u in urls):
        check_ca_file(Path(ca_file), ca_file)
    return SenderConfig(
        apns_url=endpoints["apns"],
        apns_sandbox_url=endpoints.get("apns_sandbox"),
        apns=apns,
        fcm_url=endpoints.get("fcm"),
        fcm_service_account=sa,
        vapid=vapid,
        ca_file=ca_file,
        db_path=db_path,
        **overrides,
    )


# -- from a config file ----------------------------------------------------------------

_LIMIT_FIELDS = ("concurrency", "rate", "burst", "max_connections")
_SECTIONS: dict[str, tuple[str, ...]] = {
    "apns": (
        "url",
        "sandbox_url",
        "key_file",
        "key_id",
        "team_id",
        "topic",
        "bundle_id",
        "ca_file",
        *_LIMIT_FIELDS,
    ),
    "fcm": ("url", "service_account_file", "ca_file", *_LIMIT_FIELDS),
    "webpush": (
        "vapid_file",
        "vapid_private_key_file",
        "subject",
        "ca_file",
        *_LIMIT_FIELDS,
    ),
    "sender": ("db", "deadline", "durability", "max_attempts"),
}
_APPLE_ID = re.compile(r"^[A-Za-z0-9]{10}$")
_AUTH_KEY_NAME = re.compile(r"^AuthKey_([A-Za-z0-9]{10})\.p8$")
_TOPIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]*$")


class _Section:
    """Typed reads from one mapping of the file; errors name ``file: section.field``."""

    def __init__(self, source: str, base: Path, name: str, data: dict[str, Any]) -> None:
        self.source = source
        self.base = base
        self.name = name
        self.data = data
        for key in data:
            if key not in _SECTIONS[name]:
                raise self.fail(
                    str(key), f"unknown field (expected one of {', '.join(_SECTIONS[name])})"
                )

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.name}.{key}: {message}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {_kind(value)}")
        return value

    def url(self, key: str, *, required: bool = False) -> str | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        problem = _url_problem(value)
        if problem:
            raise self.fail(key, problem)
        return value.rstrip("/")

    def path(self, key: str, *, required: bool = False) -> tuple[Path, str] | None:
        shown = self.string(key, required=required)
        if shown is None:
            return None
        p = Path(shown).expanduser()
        return (p if p.is_absolute() else self.base / p), shown

    def load(self, key: str, loader: Callable[[Path, str], Any], *, required: bool) -> Any:
        where = self.path(key, required=required)
        if where is None:
            return None
        path, shown = where
        try:
            return loader(path, shown)
        except _Bad as exc:
            message = str(exc)
            if message.startswith("no such file") and not Path(shown).expanduser().is_absolute():
                message += f" in {self.base}"  # relative paths count from the file's directory
            raise self.fail(key, message) from None

    def number(self, key: str, *, low: float, integer: bool = False, above: bool = False) -> Any:
        """A number ``>= low`` (``> low`` when ``above``), or None when absent."""
        value = self.data.get(key)
        if value is None:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and integer and not (isinstance(value, int) or float(value).is_integer()):
            ok = False
        if not ok or not math.isfinite(value) or value < low or (above and value == low):
            what = "a whole number" if integer else "a number"
            raise self.fail(key, f"expected {what} {'>' if above else '>='} {low:g}, got {value!r}")
        return int(value) if integer else float(value)

    def choice(self, key: str, options: tuple[str, ...]) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if value not in options:
            raise self.fail(key, f"expected one of {', '.join(options)}, got {value!r}")
        return str(value)

    def limits(self, default: ProviderLimits) -> ProviderLimits:
        concurrency = self.number("concurrency", low=1, integer=True)
        rate = self.number("rate", low=0)
        burst = self.data.get("burst")
        if burst is not None:
            burst = self.number("burst", low=1)
        max_connections = self.number("max_connections", low=1, integer=True)
        return ProviderLimits(
            concurrency=default.concurrency if concurrency is None else concurrency,
            rate=default.rate if rate is None else rate,
            burst=burst if burst is not None else (default.burst if rate is None else None),
            max_connections=default.max_connections if max_connections is None else max_connections,
        )

    def ca_file(self) -> str | None:
        where = self.path("ca_file")
        if where is None:
            return None
        try:
            check_ca_file(*where)
        except _Bad as exc:
            raise self.fail("ca_file", str(exc)) from None
        return str(where[0])


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's top-level mapping (YAML, or JSON for ``*.json``)."""
    source = str(path)
    try:
        raw = _read(path, source)
    except _Bad as exc:
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
        raise ConfigError(f"{source}: invalid JSON: {_first_line(exc)}") from None
    except Exception as exc:  # yaml.YAMLError and its kin
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or _first_line(exc)
        raise ConfigError(f"{source}: {line}invalid YAML: {problem}") from None
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{source}: expected a mapping with apns, fcm, webpush, sender sections,"
            f" got {_kind(doc)}"
        )
    return doc


def from_config_file(path: Path, **overrides: Any) -> SenderConfig:
    """The config a file describes; ``overrides`` (the command line's flags: ``db_path``,
    ``deadline``, ``synchronous``) win over the file's ``sender:`` section."""
    source = str(path)
    base = path.resolve().parent
    doc = read_config_file(path)
    for key in doc:
        if key not in _SECTIONS:
            raise ConfigError(
                f"{source}: {key}: unknown section (expected apns, fcm, webpush, sender)"
            )
    sections: dict[str, _Section] = {}
    for name in _SECTIONS:
        data = doc.get(name)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {name}: expected a mapping, got {_kind(data)}")
        sections[name] = _Section(source, base, name, data)
    if not any(p in sections for p in PROVIDERS):
        raise ConfigError(f"{source}: expected at least one of the sections apns, fcm, webpush")

    limits = default_limits()
    ca_files: dict[str, str | None] = {}
    apns = apns_url = apns_sandbox = None
    if (s := sections.get("apns")) is not None:
        apns_url = s.url("url", required=True)
        apns_sandbox = s.url("sandbox_url")
        where = s.path("key_file", required=True)
        assert where is not None
        key = s.load("key_file", load_apns_key, required=True)
        named = _AUTH_KEY_NAME.match(where[0].name)
        key_id = s.string("key_id")
        if key_id is None:
            if named is None:
                raise s.fail("key_id", "required (the key file is not named AuthKey_<KEYID>.p8)")
            key_id = named.group(1)
        elif not _APPLE_ID.match(key_id):
            raise s.fail("key_id", f"expected the 10-character key id, got {key_id!r}")
        elif named is not None and named.group(1) != key_id:
            raise s.fail(
                "key_id",
                f"{key_id!r}, but the key file '{where[1]}' is the key {named.group(1)!r}",
            )
        team_id = s.string("team_id", required=True)
        assert team_id is not None
        if not _APPLE_ID.match(team_id):
            raise s.fail("team_id", f"expected the 10-character team id, got {team_id!r}")
        topic, bundle = s.string("topic"), s.string("bundle_id")
        if topic is not None and bundle is not None and topic != bundle:
            raise s.fail("bundle_id", f"expected the same as topic ({topic!r}) or only one")
        topic = topic or bundle
        if topic is None:
            raise s.fail("topic", "required (the app's bundle id; alias bundle_id)")
        if not _TOPIC.match(topic):
            raise s.fail("topic", f"expected a bundle id such as com.example.app, got {topic!r}")
        apns = ApnsCredentials(key_id, team_id, topic, key)
        ca_files["apns"] = s.ca_file()
        limits["apns"] = s.limits(limits["apns"])

    fcm_url = sa = None
    if (s := sections.get("fcm")) is not None:
        fcm_url = s.url("url", required=True)
        sa = s.load("service_account_file", load_service_account, required=True)
        ca_files["fcm"] = s.ca_file()
        limits["fcm"] = s.limits(limits["fcm"])

    vapid = None
    if (s := sections.get("webpush")) is not None:
        if s.has("vapid_file") == s.has("vapid_private_key_file"):
            raise s.fail("vapid_file", "expected exactly one of vapid_file, vapid_private_key_file")
        subject = s.string("subject")
        if subject is not None and _subject_problem(subject):
            raise s.fail("subject", _subject_problem(subject))
        if s.has("vapid_file"):
            vapid = s.load("vapid_file", load_vapid_file, required=True)
        else:
            vapid = s.load("vapid_private_key_file", load_vapid_private_key, required=True)
            if subject is None:
                raise s.fail("subject", "required with vapid_private_key_file (mailto: or https:)")
        if subject is not None:
            vapid["subject"] = subject
        ca_files["webpush"] = s.ca_file()
        limits["webpush"] = s.limits(limits["webpush"])

    fields: dict[str, Any] = {"db_path": base / "sender.db"}
    if (s := sections.get("sender")) is not None:
        if (db := s.path("db")) is not None:
            fields["db_path"] = db[0]
        deadline = s.number("deadline", low=0, above=True)
        if deadline is not None:
            fields["deadline"] = deadline
        durability = s.choice("durability", ("process", "power"))
        if durability is not None:
            fields["synchronous"] = "FULL" if durability == "power" else "NORMAL"
        max_attempts = s.number("max_attempts", low=1, integer=True)
        if max_attempts is not None:
            fields["max_attempts"] = max_attempts
        if "db_path" not in overrides and Path(fields["db_path"]).is_dir():
            raise s.fail("db", f"expected a file, '{fields['db_path']}' is a directory")
    fields.update(overrides)
    return SenderConfig(
        apns_url=apns_url,
        apns_sandbox_url=apns_sandbox,
        apns=apns,
        fcm_url=fcm_url,
        fcm_service_account=sa,
        vapid=vapid,
        ca_file=None,
        limits=limits,
        ca_files=ca_files,
        **fields,
    )
