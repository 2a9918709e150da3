"""The access tokens: the owner's (changes and viewing) and the read-only view token.

Like Jupyter's: FACELIVE_TOKEN / FACELIVE_VIEW_TOKEN when set, otherwise a random token made at
first start and kept (mode 0600) in the data dir, so the URLs printed once keep working across
restarts. Viewing is closed by default: the names and faces in a gallery are biometric data,
and a server on a LAN is reachable by everyone on it. FACELIVE_OPEN_VIEWING=1 opens viewing.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from facelive.atomic import PRIVATE, atomic_write
from facelive.settings import Settings

TOKEN_FILE = "token"
VIEW_TOKEN_FILE = "view_token"
OWNER, VIEWER = "owner", "viewer"


def resolve_token(settings: Settings) -> str:
    """settings.token, else the one kept in data_dir/token, else a new one (saved there)."""
    return _resolve(settings.token, settings, TOKEN_FILE)


def resolve_view_token(settings: Settings) -> str:
    """settings.view_token, else the one kept in data_dir/view_token, else a new one."""
    return _resolve(settings.view_token, settings, VIEW_TOKEN_FILE)


def _resolve(given: str | None, settings: Settings, filename: str) -> str:
    if given:
        return given
    path = settings.data_dir / filename
    try:
        kept = path.read_text().strip()
    except FileNotFoundError:
        kept = ""
    if len(kept) >= 8:
        return kept
    token = secrets.token_urlsafe(24)
    atomic_write(path, (token + "\n").encode(), mode=PRIVATE)
    return token


def token_matches(given: Any, expected: str) -> bool:
    """Constant-time comparison; anything but a non-empty string is no match."""
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(header: str | None) -> str | None:
    """The TOKEN of an `Authorization: Bearer TOKEN` header; None when absent or of another
    scheme. The scheme is case-insensitive (RFC 9110)."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def role_of(given: Any, owner: str, viewer: str) -> str | None:
    """OWNER, VIEWER or None (no token, or a wrong one). Both comparisons always run, so the
    time taken does not tell which token was close."""
    is_owner = token_matches(given, owner)
    is_viewer = token_matches(given, viewer)
    return OWNER if is_owner else VIEWER if is_viewer else None
