"""TensorFlow's import without its start-up notices on the console.

TensorFlow prints, from C++ and before any Python logging is set up, lines such as "All log
messages before absl::InitializeLog() is called are written to STDERR" and the oneDNN notice;
TF_CPP_MIN_LOG_LEVEL does not silence all of them. They are the first thing a new user sees,
and they are not FaceLive's. So the import runs with file descriptor 2 pointed at a temporary
file: on success what it caught is dropped, on failure it is shown (it may say why).
FACELIVE_TF_LOG=1 or `--verbose` leaves TensorFlow's output alone.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow(show_notices: bool = False) -> None:
    """Import TensorFlow now (a no-op when already imported)."""
    if "tensorflow" in sys.modules:
        return
    if show_notices:
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            caught.seek(0)
            sys.stderr.write(caught.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
