"""Run `facelive` subcommands in-process the way facelive.cli.main dispatches them (a
CommandError becomes one line on stderr and exit 2), with the batch tools wired in."""

from __future__ import annotations

import argparse
import sys

import pytest

from facelive.cli import CommandError, _common
from facelive.cli_gallery import add_gallery_commands
from facelive.cli_tools import add_tool_commands


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="facelive")
    sub = root.add_subparsers(dest="command", required=True)
    add_gallery_commands(sub, _common)
    add_tool_commands(sub, _common)
    return root


def run(argv: list[str], capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command."""
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
    except CommandError as exc:
        print(f"facelive: error: {exc}", file=sys.stderr)
        code = 2
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
