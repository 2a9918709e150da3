"""What can go wrong in a model download, each a DownloadError (a FaceLiveError of kind
"unavailable") whose message says why, for a user."""

from __future__ import annotations

from facelive.errors import FaceLiveError


class DownloadError(FaceLiveError, RuntimeError):
    """A download did not yield the expected file; the message says why, for a user."""

    kind = "unavailable"


class UnexpectedHtmlError(DownloadError):
    """An HTML page arrived where a binary file was expected."""


class TooLargeError(DownloadError):
    """The server sent (or announced) more bytes than the file may have."""


class IncompleteDownloadError(DownloadError):
    """The connection ended before the announced length arrived."""


class DigestMismatchError(DownloadError):
    """The bytes arrived but are not the file the manifest describes."""


class ArchiveError(DownloadError):
    """A downloaded archive is unreadable, lacks the wanted member, or the member is too big."""
