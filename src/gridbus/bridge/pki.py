"""A small certificate authority for the bridge's mutual TLS (``gridbus bridge certs``).

Each site's bridge needs a certificate signed by a CA both sites trust, and
the private key that goes with it; a bridge refuses any peer whose
certificate another CA signed (or none).  A lab rarely has a PKI at hand, so
this makes one: a CA, then one certificate per site, with ``localhost``,
``127.0.0.1`` and the names given as subject alternative names.  Keep
``ca.key`` off the bridges: it only signs.  Uses the ``cryptography``
package (extra ``zenoh``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..extras import require

__all__ = ["Issued", "make_ca", "issue"]

_DAYS = 825  # what browsers accept for a leaf; the CA lives ten years


@dataclass(frozen=True)
class Issued:
    """Where a certificate and its key were written."""

    cert: Path
    key: Path


def _names(x509: Any, common_name: str) -> Any:
    return x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])


def _write_key(key: Any, path: Path) -> None:
    serialization = require("cryptography.hazmat.primitives.serialization", "bridge certificates")
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(data)
    path.chmod(0o600)


def _new_key() -> Any:
    ec = require("cryptography.hazmat.primitives.asymmetric.ec", "bridge certificates")
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(out: Path, name: str = "gridbus lab CA") -> Issued:
    """Create a CA (``ca.pem``, ``ca.key``) in ``out``."""
    x509 = require("cryptography.x509", "bridge certificates")
    hashes = require("cryptography.hazmat.primitives.hashes", "bridge certificates")
    out.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_names(x509, name))
        .issuer_name(_names(x509, name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    issued = Issued(out / "ca.pem", out / "ca.key")
    serialization = require("cryptography.hazmat.primitives.serialization", "bridge certificates")
    issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, issued.key)
    return issued


def issue(ca: Issued, out: Path, name: str, hosts: tuple[str, ...] = ()) -> Issued:
    """A certificate for ``name`` (a site) signed by ``ca``, valid for localhost and ``hosts``.

    ``ca`` may be any CA (``make_ca`` of another directory makes a "wrong CA"
    for tests); the result is ``<name>.pem`` and ``<name>.key`` in ``out``.
    """
    x509 = require("cryptography.x509", "bridge certificates")
    hashes = require("cryptography.hazmat.primitives.hashes", "bridge certificates")
    serialization = require("cryptography.hazmat.primitives.serialization", "bridge certificates")
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    out.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    alt: list[Any] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    usage = x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH])
    cert = (
        x509.CertificateBuilder()
        .subject_name(_names(x509, name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    issued = Issued(out / f"{name}.pem", out / f"{name}.key")
    issued.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, issued.key)
    return issued
