"""APNs provider-token (JWT) verification, as Apple enforces it.

A provider token is an ES256 JWT whose header names the signing key (``kid``) and whose
claims carry the team id (``iss``) and issue time (``iat``). Verification of a given
token string is cached: senders reuse one token for 20-60 minutes, so the signature is
checked once and only the age is re-evaluated per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

MAX_TOKEN_AGE = 3600.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    team_id: str
    public_key: ec.EllipticCurvePublicKey
    bundle_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A verified token (``reason`` empty) or why it failed."""

    reason: str = ""
    key_id: str = ""
    team_id: str = ""
    issued_at: float = 0.0


class ProviderTokenVerifier:
    def __init__(self, keys: list[SigningKey], max_age: float = MAX_TOKEN_AGE, cache_size: int = 10_000) -> None:
        self.keys = {k.key_id: k for k in keys}
        self.max_age = max_age
        self._cache: dict[str, TokenCheck] = {}
        self._cache_size = cache_size

    def add_key(self, key: SigningKey) -> None:
        self.keys[key.key_id] = key
        self._cache.clear()

    def _verify(self, token: str) -> TokenCheck:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return TokenCheck("InvalidProviderToken")
        kid = header.get("kid")
        if header.get("alg") != "ES256" or not isinstance(kid, str):
            return TokenCheck("InvalidProviderToken")
        key = self.keys.get(kid)
        if key is None:
            return TokenCheck("InvalidProviderToken")
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["ES256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            return TokenCheck("InvalidProviderToken")
        iss, iat = claims.get("iss"), claims.get("iat")
        if not isinstance(iss, str) or not isinstance(iat, (int, float)) or isinstance(iat, bool):
            return TokenCheck("InvalidProviderToken")
        if iss != key.team_id:
            return TokenCheck("UnrelatedKeyIdInToken" if iss in {k.team_id for k in self.keys.values()} else "InvalidProviderToken")
        return TokenCheck("", kid, iss, float(iat))

    def check(self, token: str, now: float) -> TokenCheck:
        result = self._cache.get(token)
        if result is None:
            result = self._verify(token)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[token] = result
        if not result.reason:
            if now - result.issued_at > self.max_age:
                return TokenCheck("ExpiredProviderToken", result.key_id, result.team_id, result.issued_at)
            if result.issued_at > now + 60:
                return TokenCheck("InvalidProviderToken", result.key_id, result.team_id, result.issued_at)
        return result
