"""The tools' progress bar: drawn (by rich) only on a terminal; a log gets one final line."""

from __future__ import annotations

import io

from facelive.tools.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_final_line_and_no_bar() -> None:
    log = io.StringIO()
    with Progress(3, "embed", log) as bar:
        for _ in range(3):
            bar.advance()
    assert log.getvalue().startswith("embed: 3/3 in ")
    assert log.getvalue().count("\n") == 1 and "\r" not in log.getvalue()


def test_a_terminal_gets_a_bar_with_the_count() -> None:
    terminal = _Terminal()
    with Progress(4, "align", terminal) as bar:
        bar.advance(4)
    drawn = terminal.getvalue()
    assert "align" in drawn and "4/4" in drawn and "100%" in drawn
    assert "in " not in drawn.splitlines()[-1]  # the log line is for logs only
