"""The batch tools' one error: a job that cannot run on its input."""

from __future__ import annotations

from facelive.errors import FaceLiveError


class ToolError(FaceLiveError, ValueError):
    """A batch job cannot run on this input; the message says why in one line."""
