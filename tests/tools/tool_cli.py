"""Run `facelive` subcommands in-process the way facelive.cli.main dispatches them (through
facelive.cli.common.run_command: a one-line error and exit 2), with the batch tools wired in."""

from __future__ import annotations

import argparse
import sys

import pytest

from facelive.cli.batch_commands import add_tool_commands
from facelive.cli.common import run_command
from facelive.cli.gallery_commands import add_gallery_commands


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="facelive")
    sub = root.add_subparsers(dest="command", required=True)
    add_gallery_commands(sub)
    add_tool_commands(sub)
    return root


def run(argv: list[str], capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command."""
    code = run_command(parser().parse_args(argv))
    if capsys is None:
        return code, "", ""
    out, err = capsys.readouterr()
    return code, out, err


if __name__ == "__main__":  # a manual runner: python tests/tools/tool_cli.py COMMAND ...
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING)
    sys.exit(run(sys.argv[1:])[0])
