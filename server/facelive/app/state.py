"""What the app's handlers share: settings, the token, the live worker, who may change things.

Kept in `app.extensions["facelive"]` so a blueprint can reach it through `current_app`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, current_app

from facelive.app.worker import LiveWorker
from facelive.settings import Settings

EXTENSION = "facelive"


@dataclass
class LiveState:
    settings: Settings
    token: str
    worker: LiveWorker
    # Socket.IO sids that connected with the right token: allowed to change the gallery.
    writers: set[str] = field(default_factory=set)


def state_of(app: Flask | None = None) -> LiveState:
    return (app or current_app).extensions[EXTENSION]
