"""Certificate-based APNs auth: push client certificates like Apple's, minted by the simulator's CA.

Apple's push certificates name the bundle id in the subject's UID and carry one or
both of two extensions: ``1.2.840.113635.100.6.3.1`` (development / sandbox) and
``1.2.840.113635.100.6.3.2`` (production). The common name reads
``Apple Push Services: <bundle>`` (both environments) or
``Apple Development IOS Push Services: <bundle>`` (sandbox only).

A client certificate the CA signed but that has no UID or no push extension is
``BadCertificate``; one for the other environment is ``BadCertificateEnvironment``.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID, ObjectIdentifier

from simulator.providers.apns.auth import CertIdentity
from simulator.state.credentials import issue_leaf, load_ca

OID_SANDBOX = ObjectIdentifier("1.2.840.113635.100.6.3.1")
OID_PRODUCTION = ObjectIdentifier("1.2.840.113635.100.6.3.2")
CERT_ENVIRONMENTS = ("production", "sandbox", "both")


def mint_push_certificate(
    state_dir: Path, bundle_id: str, environment: str, team_id: str = ""
) -> tuple[bytes, bytes]:
    """A push client certificate and its key (both PEM) for ``bundle_id``."""
    if environment not in CERT_ENVIRONMENTS:
        raise ValueError(f"environment: expected one of {', '.join(CERT_ENVIRONMENTS)}")
    ca_key, ca_cert = load_ca(state_dir)
    if environment == "sandbox":
        cn = f"Apple Development IOS Push Services: {bundle_id}"
        exts: list[x509.ExtensionType] = [x509.UnrecognizedExtension(OID_SANDBOX, b"\x05\x00")]
    else:
        cn = f"Apple Push Services: {bundle_id}"
        exts = [x509.UnrecognizedExtension(OID_PRODUCTION, b"\x05\x00")]
        if environment == "both":
            exts.append(x509.UnrecognizedExtension(OID_SANDBOX, b"\x05\x00"))
    names = [x509.NameAttribute(NameOID.USER_ID, bundle_id)]
    if team_id:
        names.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, team_id))
    key, cert = issue_leaf(ca_key, ca_cert, cn, server=False, extra_names=names, extensions=exts)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def identify(der: bytes) -> CertIdentity | None:
    """The push identity of a client certificate; ``None`` when it is not a usable push cert."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    if not uids:
        return None
    bundle = uids[0].value
    if not isinstance(bundle, str) or not bundle:
        return None
    envs: set[str] = set()
    for ext in cert.extensions:
        if ext.oid == OID_PRODUCTION:
            envs.add("production")
        elif ext.oid == OID_SANDBOX:
            envs.add("sandbox")
    if not envs:
        return None
    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    team = ous[0].value if ous and isinstance(ous[0].value, str) else ""
    return CertIdentity(bundle, frozenset(envs), team)
