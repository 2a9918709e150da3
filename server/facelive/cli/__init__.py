"""`facelive`: the command line. Each subcommand parses its flags, builds Settings and calls
one function of the rooms below; errors become one line on stderr and a non-zero exit
(common.run_command, the one boundary).

    common.py            exit codes, common flags, Settings from flags, JSON out, run_command
    model_commands.py    models fetch | status
    image_commands.py    detect, compare
    eval_commands.py     evaluate-lfw, calibrate, evaluate-openset
    gallery_commands.py  enroll, identify, people, gallery export | import, reembed
    batch_commands.py    align, embed, train, classify, video
    serve.py             serve (also `python -m facelive.cli.serve`)

The command modules are imported when the parser is built, never here: `python -m
facelive.cli.serve` imports this package first, and must stay light.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from facelive import __version__


def build_parser() -> argparse.ArgumentParser:
    """The whole `facelive` parser, every subcommand wired in."""
    from facelive.cli.batch_commands import add_tool_commands
    from facelive.cli.eval_commands import add_eval_commands
    from facelive.cli.gallery_commands import add_gallery_commands
    from facelive.cli.image_commands import add_image_commands
    from facelive.cli.model_commands import add_model_commands
    from facelive.cli.serve import add_serve_command

    parser = argparse.ArgumentParser(
        prog="facelive", description="Self-hosted live face recognition."
    )
    parser.add_argument("--version", action="version", version=f"facelive {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_model_commands(sub)
    add_image_commands(sub)
    add_eval_commands(sub)
    add_gallery_commands(sub)
    add_tool_commands(sub)
    add_serve_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `facelive` command: parse `argv` (default sys.argv), run, return the exit status."""
    from facelive.cli.common import quiet_tensorflow, run_command

    quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Our own start-up facts (which embedder, which weights) are always worth one line.
    logging.getLogger("facelive").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    return run_command(args)
