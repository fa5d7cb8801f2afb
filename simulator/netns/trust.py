"""The trust COMMAND inherits: the system's CAs plus pushsim's, for every kind of client.

One bundle file (system CAs, then ``ca.pem``) behind ``SSL_CERT_FILE`` (OpenSSL, Python's
``ssl``, httpx, aiohttp), ``REQUESTS_CA_BUNDLE`` (requests), ``NODE_EXTRA_CA_CERTS`` (Node)
and ``CURL_CA_BUNDLE`` (curl); when a JVM is installed, a truststore holding the same CAs,
named in ``JAVA_TOOL_OPTIONS``.
"""

from __future__ import annotations

import os
import shutil
import ssl
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

TRUSTSTORE_PASSWORD = "changeit"  # the JDK's own default; the store holds no secrets


def system_ca_file() -> Path | None:
    """The system's CA bundle, as OpenSSL finds it (None when there is none)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        import certifi
    except ImportError:
        return None
    return Path(certifi.where())


def write_bundle(out_dir: Path, ca_file: Path) -> Path:
    """``out_dir/ca-bundle.pem``: the system's CAs followed by pushsim's."""
    out_dir.mkdir(parents=True, exist_ok=True)
    system = system_ca_file()
    parts = [system.read_bytes()] if system is not None else []
    parts.append(ca_file.read_bytes())
    bundle = out_dir / "ca-bundle.pem"
    bundle.write_bytes(b"\n".join(p.rstrip(b"\n") for p in parts) + b"\n")
    return bundle


def write_truststore(out_dir: Path, bundle: Path) -> Path | None:
    """``out_dir/truststore.p12`` holding every CA in ``bundle``, for a JVM (None without one).

    Written directly (PKCS#12 with Java's trusted-certificate attribute), so no JVM starts.
    """
    if shutil.which("keytool") is None and shutil.which("java") is None:
        return None
    with warnings.catch_warnings():  # some system roots predate RFC 5280's serial rules
        warnings.simplefilter("ignore")
        certs = x509.load_pem_x509_certificates(bundle.read_bytes())
    entries = [pkcs12.PKCS12Certificate(cert, _alias(cert, i)) for i, cert in enumerate(certs)]
    data = pkcs12.serialize_java_truststore(
        entries, serialization.BestAvailableEncryption(TRUSTSTORE_PASSWORD.encode())
    )
    store = out_dir / "truststore.p12"
    store.write_bytes(data)
    return store


def _alias(cert: x509.Certificate, index: int) -> bytes:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else "ca"
    return f"{index:03d} {name}".lower().encode()


def trust_env(bundle: Path, truststore: Path | None) -> dict[str, str]:
    """The variables that make every common client trust ``bundle`` (and ``truststore``)."""
    env = {
        "SSL_CERT_FILE": str(bundle),
        "REQUESTS_CA_BUNDLE": str(bundle),
        "NODE_EXTRA_CA_CERTS": str(bundle),
        "CURL_CA_BUNDLE": str(bundle),
    }
    if truststore is not None:
        env["JAVA_TOOL_OPTIONS"] = " ".join(
            (
                os.environ.get("JAVA_TOOL_OPTIONS", ""),
                f"-Djavax.net.ssl.trustStore={truststore}",
                "-Djavax.net.ssl.trustStoreType=PKCS12",
                f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}",
            )
        ).strip()
    return env
