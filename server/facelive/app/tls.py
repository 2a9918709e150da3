"""HTTPS without setup: a self-signed certificate for this machine, made once, kept in the data
dir.

Browsers give the camera (getUserMedia) only to secure pages, and a phone reaches the server by
its LAN address, so plain HTTP is not an option. The certificate names every host name and
address the machine answers to (SubjectAltNames), so after the browser's one-time warning the
page works under any of them. It is built with `cryptography` (pyOpenSSL's own X509 API has no
extensions any more; pyOpenSSL depends on `cryptography` and recommends it for this).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from facelive.atomic import PRIVATE, atomic_write

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
VALID_DAYS = 825
RENEW_DAYS = 7  # a certificate closer than this to expiry is made anew at start-up

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def lan_addresses() -> list[str]:
    """This machine's non-loopback IP addresses, best guess first: the one with the default
    route (found by 'connecting' a UDP socket, which sends nothing), then the host name's."""
    found: list[str] = []
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                found.append(sock.getsockname()[0])
        except OSError:
            pass  # no route of this family: not an error
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
    except OSError:
        infos = []
    found += [str(info[4][0]) for info in infos]
    out = []
    for addr in dict.fromkeys(a.split("%")[0] for a in found):
        ip = ipaddress.ip_address(addr)
        if not (ip.is_loopback or ip.is_unspecified or ip.is_link_local):
            out.append(addr)
    return out


def host_names() -> list[str]:
    """Names this machine may be reached by: its host name, the mDNS .local name phones on the
    LAN resolve, its fully qualified name."""
    names = [socket.gethostname()]
    short = names[0].split(".")[0]
    names += [f"{short}.local", socket.getfqdn()]
    return [n for n in dict.fromkeys(names) if n and not _is_ip(n) and n != "localhost"]


def subject_alt_names(extra: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the certificate should cover: localhost, loopback, this
    machine's names and LAN addresses, and `extra` (e.g. the --host given)."""
    dns, ips = ["localhost", *host_names()], ["127.0.0.1", "::1", *lan_addresses()]
    for item in extra:
        if item in ("", "0.0.0.0", "::"):
            continue
        (ips if _is_ip(item) else dns).append(item)
    return list(dict.fromkeys(dns)), list(dict.fromkeys(ips))


def make_self_signed(
    cert_path: Path, key_path: Path, dns_names: list[str], ip_addresses: list[str]
) -> None:
    """Write a new P-256 key (0600) and a self-signed server certificate for the names."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0] if dns_names else "localhost"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "FaceLive (self-signed)"),
    ])
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # tolerate a client clock a bit behind
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    atomic_write(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        mode=PRIVATE,
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _usable(cert_path: Path, key_path: Path) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return False
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return left > dt.timedelta(days=RENEW_DAYS)


def ensure_self_signed(tls_dir: Path, extra_names: Iterable[str] = ()) -> tuple[Path, Path]:
    """(cert, key) paths in tls_dir, made on first use and kept; made anew only when missing,
    unreadable or about to expire (delete the folder to force new names)."""
    cert_path, key_path = tls_dir / CERT_FILE, tls_dir / KEY_FILE
    if not _usable(cert_path, key_path):
        tls_dir.mkdir(parents=True, exist_ok=True)
        make_self_signed(cert_path, key_path, *subject_alt_names(extra_names))
    return cert_path, key_path


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint as browsers show it (AB:CD:...), to check the certificate by eye."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def certificate_names(cert_path: Path) -> list[str]:
    """The DNS names and IP addresses a certificate covers."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [*san.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
