"""Google's OAuth2 token endpoint for service accounts, as a pure core.

``POST /token`` with a form-encoded JWT-bearer grant
(``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<RS256 JWT>``) signed
by the service-account key pushsim minted. The assertion is checked the way Google checks
it (``iss`` a known service account, signature by its key, ``aud`` the token URI, a
``scope``, ``iat``/``exp`` at most one hour apart and around now) and answered with
``{"access_token", "expires_in", "token_type": "Bearer"}``. Errors use Google's OAuth error
JSON: ``{"error": "invalid_grant", "error_description": ...}``.

Access tokens are remembered in :class:`AccessTokens` with their expiry, so FCM can tell a
valid token from an expired or unknown one (401 UNAUTHENTICATED).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pushsim.clock import Clock
from simulator.providers.jwt_rules import decode_signed, unverified_claims
from simulator.wire import Request, Respond

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_OLD_TOKEN_URI = "https://www.googleapis.com/oauth2/v4/token"  # older clients

_JSON = (
    ("content-type", "application/json; charset=utf-8"),
    ("cache-control", "no-cache, no-store, max-age=0"),
)
_SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A service account whose assertions the endpoint accepts."""

    client_email: str
    project_id: str
    public_key: rsa.RSAPublicKey
    private_key_id: str | None = None

    @classmethod
    def from_pem(
        cls,
        client_email: str,
        project_id: str,
        public_key_pem: bytes,
        private_key_id: str | None = None,
    ) -> ServiceAccount:
        key = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("a service account key must be RSA")
        return cls(client_email, project_id, key, private_key_id)


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What an access token stands for."""

    token: str
    client_email: str
    project_id: str
    scopes: frozenset[str]
    issued_at: float
    expires_at: float

    @property
    def may_send(self) -> bool:
        return not self.scopes.isdisjoint(FCM_SCOPES)


@dataclass
class OAuthConfig:
    """Knobs of the token endpoint (all changeable at run time)."""

    token_lifetime: float = 3600.0  # seconds an access token is valid
    max_assertion_lifetime: float = 3600.0  # exp - iat
    clock_skew: float = 300.0  # tolerated for iat in the future / exp in the past
    accept_any_audience: bool = False  # accept an aud other than this endpoint's URIs


class AccessTokens:
    """Issued access tokens and their expiry."""

    def __init__(self, clock: Clock, rng: random.Random, max_tokens: int = 100_000) -> None:
        self.clock = clock
        self.rng = rng
        self.max_tokens = max_tokens
        self._grants: dict[str, AccessGrant] = {}
        self.issued = 0

    def issue(
        self, account: ServiceAccount, scopes: frozenset[str], lifetime: float
    ) -> AccessGrant:
        now = self.clock.time()
        if len(self._grants) >= self.max_tokens:
            self.purge(now)
            if len(self._grants) >= self.max_tokens:  # all still valid: forget the oldest
                del self._grants[next(iter(self._grants))]
        token = "ya29.c." + f"{self.rng.getrandbits(256):064x}"
        grant = AccessGrant(
            token, account.client_email, account.project_id, scopes, now, now + lifetime
        )
        self._grants[token] = grant
        self.issued += 1
        return grant

    def get(self, token: str) -> AccessGrant | None:
        """The grant behind ``token``, expired or not; None when never issued here."""
        return self._grants.get(token)

    def expire_all(self) -> int:
        """Make every issued token expired now (a forced re-authentication)."""
        now = self.clock.time()
        n = 0
        for tok, g in list(self._grants.items()):
            if g.expires_at > now:
                self._grants[tok] = AccessGrant(
                    g.token, g.client_email, g.project_id, g.scopes, g.issued_at, now
                )
                n += 1
        return n

    def purge(self, now: float) -> None:
        for tok in [t for t, g in self._grants.items() if g.expires_at <= now]:
            del self._grants[tok]

    def __len__(self) -> int:
        return len(self._grants)


@dataclass
class _Problem(Exception):
    error: str
    description: str
    status: int = 400


def oauth_error(error: str, description: str, status: int = 400) -> Respond:
    body = json.dumps({"error": error, "error_description": description}).encode()
    return Respond(status, _JSON, body)


def _form(req: Request) -> dict[str, str]:
    ctype = (req.header("content-type") or "").lower()
    text = req.body.decode("utf-8", "replace")
    if ctype.startswith("application/json"):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise _Problem("invalid_request", "Invalid JSON payload received.") from exc
        if not isinstance(obj, dict):
            raise _Problem("invalid_request", "Invalid JSON payload received.")
        return {str(k): v for k, v in obj.items() if isinstance(v, str)}
    try:
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise _Problem("invalid_request", "Malformed request body.") from exc
    return {k: v[0] for k, v in parsed.items()}


@dataclass
class TokenEndpoint:
    """The ``/token`` endpoint: verifies a JWT-bearer assertion and issues an access token."""

    accounts: Iterable[ServiceAccount]
    tokens: AccessTokens
    clock: Clock
    config: OAuthConfig = field(default_factory=OAuthConfig)
    # Extra audiences accepted besides the URI the request was sent to (e.g. endpoints.json's).
    audiences: Callable[[], Iterable[str]] = lambda: ()
    issued: int = 0
    refused: int = 0

    def __post_init__(self) -> None:
        self._by_email = {a.client_email: a for a in self.accounts}

    def handle(self, req: Request) -> Respond:
        if req.method != "POST":
            return oauth_error(
                "invalid_request", f"Method {req.method} is not allowed; use POST.", 405
            )
        try:
            grant = self._grant(req)
        except _Problem as p:
            self.refused += 1
            return oauth_error(p.error, p.description, p.status)
        self.issued += 1
        expires_in = max(0, int(grant.expires_at - grant.issued_at) - 1)
        body = json.dumps(
            {"access_token": grant.token, "expires_in": expires_in, "token_type": "Bearer"}
        )
        return Respond(200, _JSON, body.encode())

    def _grant(self, req: Request) -> AccessGrant:
        form = _form(req)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise _Problem("invalid_request", "Missing required parameter: grant_type")
        if grant_type != JWT_BEARER:
            raise _Problem("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = form.get("assertion")
        if not assertion:
            raise _Problem("invalid_request", "Missing required parameter: assertion")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = unverified_claims(assertion)
        except jwt.PyJWTError as exc:
            raise _Problem(
                "invalid_grant", "Invalid JWT: the assertion is not a well-formed JWT."
            ) from exc
        iss = claims.get("iss")
        account = self._by_email.get(iss) if isinstance(iss, str) else None
        if account is None:
            raise _Problem("invalid_grant", "Invalid grant: account not found")
        if header.get("alg") != "RS256":
            raise _Problem("invalid_grant", "Invalid JWT Signature.")
        kid = header.get("kid")
        if kid is not None and account.private_key_id is not None and kid != account.private_key_id:
            raise _Problem("invalid_grant", "Invalid JWT Signature.")
        try:
            decode_signed(assertion, account.public_key, "RS256")
        except jwt.PyJWTError as exc:
            raise _Problem("invalid_grant", "Invalid JWT Signature.") from exc

        aud = claims.get("aud")
        if not self.config.accept_any_audience and aud not in self._audiences(req):
            raise _Problem("invalid_grant", "Invalid JWT: Failed audience check.")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not _is_number(iat) or not _is_number(exp):
            raise _Problem("invalid_grant", _SHORT_LIVED)
        assert isinstance(iat, int | float) and isinstance(exp, int | float)
        now = self.clock.time()
        skew = self.config.clock_skew
        if (
            exp <= iat
            or exp - iat > self.config.max_assertion_lifetime
            or iat > now + skew
            or exp < now - skew
        ):
            raise _Problem("invalid_grant", _SHORT_LIVED)
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.split():
            raise _Problem("invalid_scope", "Empty or missing scope not allowed.")
        scopes = frozenset(scope.split())
        if not all(
            s.startswith("https://www.googleapis.com/auth/") or s in ("openid", "email", "profile")
            for s in scopes
        ):
            raise _Problem("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        return self.tokens.issue(account, scopes, self.config.token_lifetime)

    def _audiences(self, req: Request) -> set[str]:
        out = {GOOGLE_TOKEN_URI, GOOGLE_OLD_TOKEN_URI, *self.audiences()}
        if req.authority:
            out.add(f"{req.scheme}://{req.authority}/token")
        return out


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)
