"""The FCM part of a simulator: the ``fcm`` listener, its control routes and hooks.

One listener serves FCM HTTP v1, the OAuth2 token endpoint and the topic APIs
(:class:`~simulator.providers.fcm.router.FcmRouter`); the part follows the auth rules
(access-token lifetime, whether expiry is enforced) and flushes a device's held
messages when it comes online.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from simulator.faults.auth import AuthPolicy
from simulator.parts import Contribution, ListenerPart, PartHost
from simulator.providers.fcm.answers import FcmFaultAnswers
from simulator.providers.fcm.control import register_control
from simulator.providers.fcm.core import PROVIDER, FcmCore
from simulator.providers.fcm.display import interpret
from simulator.providers.fcm.oauth import AccessTokens, OAuthConfig, ServiceAccount, TokenEndpoint
from simulator.providers.fcm.router import FcmRouter
from simulator.server.listener import ListenerOptions
from simulator.state.credentials import Credentials

# FCM's HTTP/2 front end allows 100 streams per connection and answers a client over that
# with GOAWAY exceeded_max_concurrent_streams (firebase-admin-node #2943).
MAX_CONCURRENT_STREAMS = 100
STREAMS_EXCEEDED_DEBUG = b"exceeded_max_concurrent_streams"


def build_fcm(host: PartHost, creds: Credentials, token_uri: Callable[[], str]) -> Contribution:
    """The FCM part for ``creds``' service account; ``token_uri``: the OAuth audience, once
    the listener is up."""
    sa = json.loads(creds.fcm_service_account_file.read_text())
    account = ServiceAccount.from_pem(
        creds.fcm_client_email,
        creds.fcm_project_id,
        creds.fcm_public_key_pem,
        sa.get("private_key_id"),
    )
    tokens = AccessTokens(host.clock, host.fork_rng())
    oauth = TokenEndpoint(
        [account], tokens, host.clock, OAuthConfig(), audiences=lambda: [token_uri()]
    )
    core = FcmCore(host.registry, tokens, host.clock, host.stats)
    router = FcmRouter(core, oauth)

    def follow_auth(policy: AuthPolicy) -> None:
        router.oauth.config.token_lifetime = policy.oauth_token_lifetime
        core.enforce_expiry = policy.oauth_expiry_enforced

    options = ListenerOptions(
        max_concurrent_streams=MAX_CONCURRENT_STREAMS,
        stream_violation_debug=STREAMS_EXCEEDED_DEBUG,
    )

    def register(app: web.Application) -> None:
        register_control(app, router, options)

    listener = ListenerPart(router, options, FcmFaultAnswers(core))
    return Contribution(
        PROVIDER,
        {PROVIDER: listener},
        control=register,
        on_online=core.devices.flush,
        follow_auth=follow_auth,
        on_deliver=interpret,  # what the Android device shows
    )
