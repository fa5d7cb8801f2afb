"""APNs provider-token (JWT) verification and topic ownership, as Apple enforces them.

A provider token is an ES256 JWT whose header names the signing key (``kid``) and whose
claims carry the team id (``iss``) and issue time (``iat``). Several keys and teams can be
registered; each key may be restricted to one environment (``BadEnvironmentKeyIdInToken``
elsewhere) and may be revoked (``Forbidden``). Each bundle id belongs to one team: a
topic another team owns is ``TopicDisallowed``. Bundle ids nobody claimed belong to the
default team (the one whose key the simulator minted first), so devices minted for any
app work with the default key.

Verification of a given token string is cached: senders reuse one token for 20-60
minutes, so the signature is checked once and only the age is re-evaluated per request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from simulator.providers.jwt_rules import decode_signed

MAX_TOKEN_AGE = 3600.0
CLOCK_SKEW = 60.0
ENVIRONMENTS = ("production", "sandbox")


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    team_id: str
    public_key: ec.EllipticCurvePublicKey
    bundle_ids: frozenset[str] = frozenset()
    environment: str = "both"  # production | sandbox | both

    def to_json(self) -> dict[str, object]:
        pem = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        return {
            "key_id": self.key_id,
            "team_id": self.team_id,
            "bundle_ids": sorted(self.bundle_ids),
            "environment": self.environment,
            "public_key": pem,
        }

    @staticmethod
    def from_json(data: dict[str, object]) -> SigningKey:
        pub = serialization.load_pem_public_key(str(data["public_key"]).encode())
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        bundles = data.get("bundle_ids") or []
        assert isinstance(bundles, list)
        return SigningKey(
            str(data["key_id"]),
            str(data["team_id"]),
            pub,
            frozenset(str(b) for b in bundles),
            str(data.get("environment", "both")),
        )


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A verified token (``reason`` empty) or why it failed."""

    reason: str = ""
    key_id: str = ""
    team_id: str = ""
    issued_at: float = 0.0
    environment: str = "both"


@dataclass(slots=True)
class ConnectionAuth:
    """What APNs remembers about one connection's authentication."""

    token: str = ""  # the provider token in use
    token_since: float = 0.0  # when the connection switched to it
    team_id: str = ""
    authorized: bool = False  # a valid token (or certificate) was seen: full stream limit granted
    narrowed: bool = False  # a notification was rejected: the stream limit is down to 1
    cert_checked: bool = False
    cert: CertIdentity | None = None
    cert_error: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def issued_at(value: object) -> float | None:
    """A provider token's ``iat`` in seconds, or ``None`` when it is not one. APNs takes a
    number or a string of decimal digits (``"1764614400"``, as a maintained client has sent
    it for years); anything else is an InvalidProviderToken."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return float(value)
    return None


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """A client certificate's push identity."""

    bundle_id: str
    environments: frozenset[str]
    team_id: str = ""


KeyLoader = Callable[[str], "SigningKey | None"]


class ProviderTokenVerifier:
    def __init__(
        self,
        keys: list[SigningKey],
        max_age: float = MAX_TOKEN_AGE,
        cache_size: int = 10_000,
        loader: KeyLoader | None = None,
    ) -> None:
        self.keys: dict[str, SigningKey] = {}
        self.teams: dict[str, set[str]] = {}  # team id -> bundle ids it claims
        self.bundle_owner: dict[str, str] = {}
        self.default_team = keys[0].team_id if keys else ""
        self.revoked: set[str] = set()
        self.max_age = max_age
        self.loader = loader
        self._cache: dict[str, TokenCheck] = {}
        self._cache_size = cache_size
        for k in keys:
            self.add_key(k)

    def add_key(self, key: SigningKey) -> None:
        self.keys[key.key_id] = key
        self.teams.setdefault(key.team_id, set()).update(key.bundle_ids)
        for b in key.bundle_ids:
            self.bundle_owner.setdefault(b, key.team_id)
        if not self.default_team:
            self.default_team = key.team_id
        self._cache.clear()

    def revoke(self, key_id: str) -> bool:
        if key_id not in self.keys:
            return False
        self.revoked.add(key_id)
        self._cache.clear()
        return True

    def owner_of(self, bundle_id: str) -> str:
        return self.bundle_owner.get(bundle_id, self.default_team)

    def _key(self, kid: str) -> SigningKey | None:
        key = self.keys.get(kid)
        if key is None and self.loader is not None:
            key = self.loader(kid)
            if key is not None:
                self.add_key(key)
        return key

    def _verify(self, token: str) -> TokenCheck:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return TokenCheck("InvalidProviderToken")
        kid = header.get("kid")
        if header.get("alg") != "ES256" or not isinstance(kid, str):
            return TokenCheck("InvalidProviderToken")
        key = self._key(kid)
        if key is None:
            return TokenCheck("InvalidProviderToken")
        try:
            claims = decode_signed(token, key.public_key, "ES256")
        except jwt.PyJWTError:
            return TokenCheck("InvalidProviderToken")
        iss, iat = claims.get("iss"), issued_at(claims.get("iat"))
        if not isinstance(iss, str) or iat is None:
            return TokenCheck("InvalidProviderToken")
        if iss != key.team_id:
            return TokenCheck(
                "UnrelatedKeyIdInToken" if iss in self.teams else "InvalidProviderToken"
            )
        if kid in self.revoked:
            return TokenCheck("Forbidden", kid, iss, iat)
        return TokenCheck("", kid, iss, iat, key.environment)

    def check(self, token: str, now: float, environment: str = "") -> TokenCheck:
        result = self._cache.get(token)
        if result is None:
            result = self._verify(token)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[token] = result
        if not result.reason:
            age = now - result.issued_at
            if age > self.max_age:
                return TokenCheck(
                    "ExpiredProviderToken", result.key_id, result.team_id, result.issued_at
                )
            if age < -CLOCK_SKEW:
                return TokenCheck(
                    "InvalidProviderToken", result.key_id, result.team_id, result.issued_at
                )
            if environment and result.environment != "both" and result.environment != environment:
                return TokenCheck(
                    "BadEnvironmentKeyIdInToken", result.key_id, result.team_id, result.issued_at
                )
        return result


def load_key_file(path: str) -> SigningKey | None:
    """A key registered at run time (``apns/keys/<KID>.json`` in the state directory)."""
    try:
        with open(path) as f:
            return SigningKey.from_json(json.load(f))
    except (OSError, ValueError, KeyError, AssertionError):
        return None
