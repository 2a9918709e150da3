"""The self-signed certificate: made once, kept, covering this machine's names."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

from cryptography import x509

from facelive.app import tls


def test_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    cert, key = tls.ensure_self_signed(tmp_path / "tls", ["192.168.7.7", "cam.example"])
    assert key.stat().st_mode & 0o777 == 0o600
    first = tls.fingerprint(cert)
    assert tls.ensure_self_signed(tmp_path / "tls") == (cert, key)
    assert tls.fingerprint(cert) == first  # kept, not made anew: the browser's OK still holds

    names = tls.certificate_names(cert)
    for name in ("localhost", "127.0.0.1", "::1", "192.168.7.7", "cam.example",
                 *tls.host_names(), *tls.lan_addresses()):
        assert name in names
    # The key and certificate belong together and load as a server's.
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)


def test_an_expiring_certificate_is_replaced(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tls, "VALID_DAYS", tls.RENEW_DAYS - 1)
    cert, key = tls.ensure_self_signed(tmp_path)
    old = tls.fingerprint(cert)
    monkeypatch.setattr(tls, "VALID_DAYS", 825)
    tls.ensure_self_signed(tmp_path)
    assert tls.fingerprint(cert) != old
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    assert loaded.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=800)


def test_a_broken_certificate_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / tls.CERT_FILE).write_text("not a certificate")
    (tmp_path / tls.KEY_FILE).write_text("not a key")
    cert, key = tls.ensure_self_signed(tmp_path)
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
