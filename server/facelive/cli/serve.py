"""`facelive serve`: the live web app. Wired into the CLI by `add_serve_command`; also runs
alone as `python -m facelive.cli.serve` (the tests and benches start it that way)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from facelive.cli.common import (
    EXIT_OK,
    add_common_flags,
    quiet_tensorflow,
    run_command,
    settings_from_args,
)
from facelive.settings import Settings


def cmd_serve(args: argparse.Namespace) -> int:
    """Errors that stop the start (bad settings, missing models, port in use, bad certificate)
    become one line on stderr and exit status 2 (at run_command)."""
    from facelive.app.server import serve

    settings = serve_settings(args)
    try:
        serve(settings)
    except KeyboardInterrupt:
        pass  # Ctrl+C is how a server is stopped (eventlet may also return quietly on it)
    print("facelive: server stopped", file=sys.stderr)
    return EXIT_OK


def serve_settings(args: argparse.Namespace) -> Settings:
    """Settings from the serve command's flags and the environment."""
    return settings_from_args(
        args,
        host=args.host,
        port=args.port,
        certfile=args.certfile,
        keyfile=args.keyfile,
        max_clients=getattr(args, "max_clients", None),
        # --verbose (the CLI's, or serve's own) also shows TensorFlow's start-up notices.
        tf_log=True if getattr(args, "verbose", False) else None,
    )


def add_serve_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add `serve` to the CLI, with the common flags."""
    serve = subparsers.add_parser(
        "serve", help="run the live web app (HTTPS; prints the URL to open)"
    )
    add_common_flags(serve)
    serve.add_argument("--host", help="address to listen on (default: $FACELIVE_HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default: $FACELIVE_PORT or 5000; 0: any)")
    serve.add_argument("--certfile", metavar="F",
                       help="TLS certificate (PEM); default: a self-signed one in the data dir")
    serve.add_argument("--keyfile", metavar="F", help="TLS private key (PEM), with --certfile")
    serve.add_argument("--max-clients", type=int, metavar="N",
                       help="live connections at once (default: $FACELIVE_MAX_CLIENTS or 32)")
    serve.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="also show TensorFlow's start-up notices (or FACELIVE_TF_LOG=1)")
    serve.set_defaults(func=cmd_serve)
    return serve


def main(argv: Sequence[str] | None = None) -> int:
    """The serve command alone, with the CLI's common flags."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="facelive")
    sub = parser.add_subparsers(dest="command")
    add_serve_command(sub)
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    return run_command(args)


if __name__ == "__main__":
    quiet_tensorflow()
    sys.exit(main())
