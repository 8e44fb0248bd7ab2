"""Key material of one lab: its ssh client key, each guest's pinned host key, and the TLS CA.

All of it lives in the git-ignored state folder, written 0600, and is made with `cryptography`
so no secret ever passes through another program's argv.
"""

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID


def write_secret(path: Path, data: bytes) -> None:
    """Writes `data` to a new 0600 file (never briefly readable by others), replacing `path`."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _write_private_key(path: Path, key) -> None:
    write_secret(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))


def ensure_ssh_keypair(private_path: Path, comment: str) -> str:
    """Creates an ed25519 keypair in OpenSSH format if missing; returns the public key line."""
    pub_path = private_path.with_name(private_path.name + ".pub")
    if not (private_path.exists() and pub_path.exists()):
        key = ed25519.Ed25519PrivateKey.generate()
        write_secret(private_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption()))
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        pub_path.write_text(f"{public} {comment}\n")
    return pub_path.read_text().strip()


def known_hosts_line(port: int, public_line: str) -> str:
    """A known_hosts entry pinning a host key to 127.0.0.1:port (the guest's forwarded ssh)."""
    key_type, key_b64 = public_line.split()[:2]
    return f"[127.0.0.1]:{port} {key_type} {key_b64}"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TOS lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ensure_ca(ca_dir: Path) -> tuple[Path, Path]:
    """The lab's own certificate authority: (cert path, key path). Created once per lab."""
    cert_path, key_path = ca_dir / "ca.pem", ca_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("TOS lab CA")).issuer_name(_name("TOS lab CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def issue_server_cert(ca_dir: Path, out_dir: Path, name: str, dns: list, ips: list) -> tuple[Path, Path]:
    """Issues (or re-issues when the names change) a server certificate signed by the lab CA."""
    cert_path, key_path = out_dir / f"{name}.pem", out_dir / f"{name}.key"
    wanted = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        sans = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        strict = any(isinstance(e.value, x509.AuthorityKeyIdentifier) for e in current.extensions)
        if set(sans) == set(wanted) and strict:
            return cert_path, key_path
    ca_cert_path, ca_key_path = ensure_ca(ca_dir)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(dns[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Python 3.13 (trixie's) verifies strictly (VERIFY_X509_STRICT): key identifiers required.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                          + ca_cert_path.read_bytes())
    return cert_path, key_path
