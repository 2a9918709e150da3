"""People's names: what the gallery accepts, and the key that makes "anna" and "Anna" one person.

A name is free text in any script ("Zoë 李", "Ахмед", "محمد") but it is shown in the browser,
written to JSON and used as a CLI argument, so anything that could hide or reorder text
(control characters, bidi overrides), break a path or a URL segment (slash, backslash) or make
two different-looking names equal is refused, each with a message that says why.
"""

from __future__ import annotations

import re
import unicodedata

from facelive.errors import FaceLiveError

MAX_NAME_LENGTH = 100
# What the recogniser answers for a face matching nobody; a person of that name would be
# indistinguishable from a stranger in every output.
UNKNOWN = "unknown"

# Format characters (category Cf) reorder or hide text: bidi embeddings, overrides and
# isolates (U+202E makes "gnp.exe" read "exe.png"), zero-width spaces, soft hyphens, tags, the
# BOM. All are refused except the zero-width non-joiner and joiner, which are part of correct
# spelling in Persian and Indic scripts.
_ALLOWED_FORMAT = frozenset("\u200c\u200d")
_WHITESPACE_RUN = re.compile(r"\s+")


class InvalidName(FaceLiveError, ValueError):
    """A name the gallery refuses; the message says why in one line."""


# The brief's spelling; the same class.
NameError_ = InvalidName


def _describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def validate_name(raw: object) -> str:
    """Check a person's name and return it in its stored form: NFC-normalised, stripped, runs
    of whitespace collapsed to one space. Raises InvalidName with the reason otherwise."""
    if not isinstance(raw, str):
        raise InvalidName(f"a name must be text, got {type(raw).__name__}")
    for char in raw:
        category = unicodedata.category(char)
        # Tab/newline are Cc; they are refused rather than collapsed, since a name with a
        # line break is almost surely a paste error.
        if category in ("Cc", "Cs", "Co", "Zl", "Zp") or (
            category == "Cf" and char not in _ALLOWED_FORMAT
        ):
            raise InvalidName(
                f"a name may not contain control or invisible characters ({_describe(char)})"
            )
        if category == "Cn":
            raise InvalidName(f"a name may not contain unassigned characters ({_describe(char)})")
        if char in "/\\":
            raise InvalidName("a name may not contain '/' or '\\'")
    name = _WHITESPACE_RUN.sub(" ", unicodedata.normalize("NFC", raw)).strip()
    if not name:
        raise InvalidName("a name may not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"a name may be at most {MAX_NAME_LENGTH} characters, this one has {len(name)}"
        )
    if name_key(name) == UNKNOWN:
        raise InvalidName(f"{name!r} is reserved for faces that match nobody")
    return name


def name_key(name: str) -> str:
    """The key two names share when they are the same person: NFC, case-folded ("Straße" and
    "STRASSE" share one), NFC again because case-folding can denormalise."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())
