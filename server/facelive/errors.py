"""One base for every error FaceLive means a person to read: `FaceLiveError`, whose message is
one line that says what went wrong and what to do. Its `kind` is what a boundary acts on: the
CLI (cli/common.run_command) prints the message and exits with the kind's status, the REST API
(app/api.py) answers JSON {error} with the kind's HTTP status. Nothing else turns errors into
messages. Imports nothing of FaceLive: every room may raise these."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but some inputs failed (e.g. unreadable images)
EXIT_USAGE = 2  # the command could not run: bad settings, missing models, bad arguments
EXIT_INTERRUPTED = 130  # Ctrl+C

# kind -> (exit status, HTTP status). Every kind exits 2: the command could not do its job.
KINDS: dict[str, tuple[int, int]] = {
    "invalid": (EXIT_USAGE, 400),  # bad input, arguments or settings; nothing changed
    "unauthorized": (EXIT_USAGE, 401),
    "forbidden": (EXIT_USAGE, 403),
    "not_found": (EXIT_USAGE, 404),
    "conflict": (EXIT_USAGE, 409),
    "too_large": (EXIT_USAGE, 413),
    "rate_limited": (EXIT_USAGE, 429),
    "broken": (EXIT_USAGE, 500),  # a stored file is damaged or cannot be used
    "unavailable": (EXIT_USAGE, 503),  # models missing, a server that cannot start
    "no_room": (EXIT_USAGE, 507),  # disk full or the file size limit; nothing was saved
}
_KIND_OF_STATUS = {status: kind for kind, (_, status) in KINDS.items()}


class FaceLiveError(Exception):
    """An error to show as one line, without a traceback. Subclasses set `kind` (a key of
    KINDS); `extra` holds JSON fields the web layer sends beside the message."""

    kind: str = "invalid"
    extra: dict[str, Any] = {}  # read-only default; an instance sets its own

    @property
    def exit_code(self) -> int:
        return KINDS[self.kind][0]

    @property
    def http_status(self) -> int:
        return KINDS[self.kind][1]

    def public_message(self) -> str:
        """The message as a client is shown it (the CLI prints str(self))."""
        return str(self)

    def to_json(self) -> dict[str, Any]:
        """{error: message, **extra}: the REST error body and the socket's refusal."""
        return {"error": self.public_message(), **self.extra}


def kind_of_status(status: int) -> str:
    """The kind whose HTTP status is `status` (KeyError for one no kind has)."""
    return _KIND_OF_STATUS[status]
