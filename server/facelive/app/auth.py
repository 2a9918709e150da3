"""The access token: who may change things (the gallery). Watching the live view is open.

Like Jupyter's: FACELIVE_TOKEN when set, otherwise a random token made at first start and kept
(mode 0600) in the data dir, so the URL printed once keeps working across restarts.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from facelive.atomic import PRIVATE, atomic_write
from facelive.settings import Settings

TOKEN_FILE = "token"


def resolve_token(settings: Settings) -> str:
    """settings.token, else the one kept in data_dir/token, else a new one (saved there)."""
    if settings.token:
        return settings.token
    path = settings.data_dir / TOKEN_FILE
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
