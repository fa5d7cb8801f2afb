"""Credentials the simulator mints in its state directory on first start.

Everything here is real key material that real client libraries accept:

- ``ca.pem`` / ``ca.key``: a P-256 CA; ``server.pem`` / ``server.key``: a leaf for
  127.0.0.1, ::1 and localhost signed by it. Clients trust ``ca.pem``.
- ``apns/AuthKey_<KEYID>.p8`` and ``apns/apns.json`` (``key_id``, ``team_id``,
  ``bundle_id``): an ES256 provider-token signing key, as Apple's developer portal issues.
- ``fcm/service-account.json``: a Google service-account file (RSA key) whose
  ``token_uri`` points at the simulator's OAuth endpoint.
- ``webpush/vapid.json``: an application-server (VAPID) key pair for the sender.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import random
import ssl
import string
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pushsim.b64 import b64url

BUNDLE_ID = "com.example.pushsim"
FCM_PROJECT_ID = "pushsim-project"


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class ApnsKey:
    key_id: str
    team_id: str
    bundle_id: str
    private_key_pem: bytes

    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = serialization.load_pem_private_key(self.private_key_pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key.public_key()


@dataclass(frozen=True)
class Credentials:
    state_dir: Path
    ca_file: Path
    ca_key_file: Path
    server_cert_file: Path
    server_key_file: Path
    apns: ApnsKey
    apns_key_file: Path
    fcm_service_account_file: Path
    fcm_project_id: str
    fcm_client_email: str
    fcm_public_key_pem: bytes
    vapid_file: Path


def _issue_ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushsim local CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    server: bool,
    extra_names: list[x509.NameAttribute[str]] | None = None,
    sans: list[x509.GeneralName] | None = None,
    extensions: list[x509.ExtensionType] | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Issue a leaf certificate (server or client) signed by the simulator's CA."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name), *(extra_names or [])]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for ext in extensions or []:
        builder = builder.add_extension(ext, critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def load_ca(state_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = serialization.load_pem_private_key((state_dir / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate((state_dir / "ca.pem").read_bytes())
    return key, cert


def ensure_credentials(state_dir: Path, seed: int | None = None) -> Credentials:
    """Mint whatever is missing in ``state_dir`` and return what is there."""
    state_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)

    ca_file, ca_key_file = state_dir / "ca.pem", state_dir / "ca.key"
    if not ca_file.exists() or not ca_key_file.exists():
        ca_key, ca_cert = _issue_ca(now)
        _write(ca_key_file, _pem_key(ca_key), private=True)
        _write(ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
    ca_key, ca_cert = load_ca(state_dir)

    server_cert_file, server_key_file = state_dir / "server.pem", state_dir / "server.key"
    if not server_cert_file.exists() or not server_key_file.exists():
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        key, cert = issue_leaf(ca_key, ca_cert, "localhost", server=True, sans=sans)
        _write(server_key_file, _pem_key(key), private=True)
        _write(server_cert_file, cert.public_bytes(serialization.Encoding.PEM))

    apns_dir = state_dir / "apns"
    apns_meta = apns_dir / "apns.json"
    if not apns_meta.exists():
        key_id, team_id = _alnum(rng, 10), _alnum(rng, 10)
        apns_key = ec.generate_private_key(ec.SECP256R1())
        _write(apns_dir / f"AuthKey_{key_id}.p8", _pem_key(apns_key), private=True)
        _write(
            apns_meta,
            json.dumps(
                {"key_id": key_id, "team_id": team_id, "bundle_id": BUNDLE_ID}, indent=2
            ).encode(),
        )
    meta = json.loads(apns_meta.read_text())
    apns_key_file = apns_dir / f"AuthKey_{meta['key_id']}.p8"
    apns = ApnsKey(meta["key_id"], meta["team_id"], meta["bundle_id"], apns_key_file.read_bytes())

    sa_file = state_dir / "fcm" / "service-account.json"
    if not sa_file.exists():
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = f"firebase-adminsdk@{FCM_PROJECT_ID}.iam.gserviceaccount.com"
        sa = {
            "type": "service_account",
            "project_id": FCM_PROJECT_ID,
            "private_key_id": b64url(rng.randbytes(20)).lower()[:40],
            "private_key": _pem_key(rsa_key).decode(),
            "client_email": email,
            "client_id": str(rng.randrange(10**20, 10**21)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "http://127.0.0.1:0/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "",
            "universe_domain": "googleapis.com",
        }
        _write(sa_file, json.dumps(sa, indent=2).encode(), private=True)
    sa = json.loads(sa_file.read_text())
    sa_key = serialization.load_pem_private_key(sa["private_key"].encode(), None)
    assert isinstance(sa_key, rsa.RSAPrivateKey)
    fcm_pub = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    vapid_file = state_dir / "webpush" / "vapid.json"
    if not vapid_file.exists():
        vkey = ec.generate_private_key(ec.SECP256R1())
        pub = vkey.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        _write(
            vapid_file,
            json.dumps(
                {
                    "private_key": _pem_key(vkey).decode(),
                    "public_key": b64url(pub),
                    "subject": "mailto:ops@example.com",
                },
                indent=2,
            ).encode(),
            private=True,
        )

    return Credentials(
        state_dir=state_dir,
        ca_file=ca_file,
        ca_key_file=ca_key_file,
        server_cert_file=server_cert_file,
        server_key_file=server_key_file,
        apns=apns,
        apns_key_file=apns_key_file,
        fcm_service_account_file=sa_file,
        fcm_project_id=sa["project_id"],
        fcm_client_email=sa["client_email"],
        fcm_public_key_pem=fcm_pub,
        vapid_file=vapid_file,
    )


def set_token_uri(creds: Credentials, token_uri: str) -> None:
    """Point the service-account file at this run's OAuth endpoint."""
    sa = json.loads(creds.fcm_service_account_file.read_text())
    if sa.get("token_uri") != token_uri:
        sa["token_uri"] = token_uri
        _write(creds.fcm_service_account_file, json.dumps(sa, indent=2).encode(), private=True)


def server_ssl_context(creds: Credentials) -> ssl.SSLContext:
    """TLS for the provider listeners: ALPN h2 and http/1.1, client certificates optional."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(creds.server_cert_file, creds.server_key_file)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    ctx.load_verify_locations(cafile=str(creds.ca_file))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx
