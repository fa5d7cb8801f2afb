"""The front door: every provider under its real hostname, on one Unix socket.

Unix sockets cross network namespaces, so a process in a namespace of its own (``pushsim
exec``) reaches the simulator through this socket and a forwarder on its loopback. The
front door terminates TLS with a certificate from the pushsim CA for each real name
(picked by SNI; a connection without SNI, to ``127.0.0.1``, gets the listeners' own
certificate), then hands each request to the listener its ``:authority`` and path name
(:func:`simulator.frontdoor.names.route`). The handler answering is that listener's own,
fault gate included, so what the front door serves is the same ground truth.

A second socket beside it (:func:`~simulator.frontdoor.sockets.control_socket`) serves
the control API the same way (plain HTTP/1.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pushsim.clock import Clock
from simulator.frontdoor.names import HOSTS, route
from simulator.frontdoor.sockets import bind_unix, control_socket, front_door_socket
from simulator.server.listener import Listener, ListenerOptions, ProviderProtocol
from simulator.state.credentials import Credentials, issue_leaf, load_ca, server_ssl_context
from simulator.wire import Action, CloseConnection, Request, json_response

_MISDIRECTED = json_response(421, b'{"reason":"MisdirectedRequest"}')
_REFUSED = CloseConnection(abort=True)


class FrontDoorRouter:
    """The front door's handler: route by authority and path, answer with that listener's."""

    def __init__(self, listeners: Mapping[str, Listener]) -> None:
        self.listeners = listeners
        self.local_ports = {lst.port: name for name, lst in listeners.items()}

    def handle(self, request: Request) -> Action:
        # h2 clients name the host in :authority, most; a few (aioapns) send a host header
        authority = request.authority or request.header("host") or ""
        where = route(authority, request.path, self.local_ports)
        listener = self.listeners.get(where.listener) if where is not None else None
        if where is None or listener is None:
            return _MISDIRECTED
        if listener.server is None:  # refusing connections (an outage): as near as one port gets
            return _REFUSED
        request.path = where.path
        request.authority = where.authority
        return listener.handler.handle(request)


def mint_name_certificates(creds: Credentials, names: list[str]) -> dict[str, tuple[Path, Path]]:
    """A certificate (and key) from the pushsim CA for each real name, in DIR/frontdoor/."""
    ca_key, ca_cert = load_ca(creds.state_dir)
    out_dir = creds.state_dir / "frontdoor"
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, Path]] = {}
    for name in names:
        key, cert = issue_leaf(ca_key, ca_cert, name, server=True, sans=[x509.DNSName(name)])
        cert_file, key_file = out_dir / f"{name}.pem", out_dir / f"{name}.key"
        key_file.touch(mode=0o600)
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[name] = (cert_file, key_file)
    return files


def sni_context(creds: Credentials) -> ssl.SSLContext:
    """The listeners' TLS settings, with the certificate chosen by the name the client asks."""
    by_name: dict[str, ssl.SSLContext] = {}
    for name, (cert_file, key_file) in mint_name_certificates(creds, list(HOSTS)).items():
        ctx = server_ssl_context(creds)
        ctx.load_cert_chain(cert_file, key_file)  # replaces the 127.0.0.1 certificate
        by_name[name] = ctx

    def pick(sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        chosen = by_name.get(name.lower()) if name else None
        if chosen is not None:
            sslobj.context = chosen

    default = server_ssl_context(creds)
    default.sni_callback = pick
    return default


class FrontDoor:
    """The front door's listener and the control API's socket, for the simulator serving DIR."""

    def __init__(self, listeners: Mapping[str, Listener], creds: Credentials, clock: Clock) -> None:
        self.state_dir = creds.state_dir
        self.listener = Listener(
            "frontdoor", FrontDoorRouter(listeners), sni_context(creds), ListenerOptions(), clock
        )
        self._control: web.SockSite | None = None

    @property
    def socket_path(self) -> Path:
        return front_door_socket(self.state_dir)

    @property
    def control_socket_path(self) -> Path:
        return control_socket(self.state_dir)

    async def start(self, control: web.AppRunner | None = None) -> None:
        loop = asyncio.get_running_loop()
        listener = self.listener
        listener.server = await loop.create_unix_server(
            lambda: ProviderProtocol(listener),
            sock=bind_unix(self.socket_path),
            ssl=listener.ssl_context,
            backlog=1024,
        )
        if control is not None:
            self._control = web.SockSite(control, bind_unix(self.control_socket_path))
            await self._control.start()

    async def stop(self) -> None:
        await self.listener.stop()
        if self._control is not None:
            await self._control.stop()
        self.socket_path.unlink(missing_ok=True)
        self.control_socket_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # empty now, unless another start owns it again
            self.socket_path.parent.rmdir()
