"""What the app's handlers share: settings, the token, the live worker, the gallery operations,
who may change things and whose capture is running.

Kept in `app.extensions["facelive"]` so a blueprint can reach it through `current_app`. Only
green threads (the event loop's) touch it; the inference thread never does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from facelive.app.capture import CaptureSession
from facelive.app.people import People
from facelive.app.uploads import UploadLimits
from facelive.app.worker import LiveWorker
from facelive.settings import Settings

EXTENSION = "facelive"


@dataclass
class LiveState:
    settings: Settings
    token: str  # the owner's
    view_token: str  # read-only
    worker: LiveWorker
    people: People
    limits: UploadLimits
    # (event, payload) to every connected page.
    broadcast: Callable[[str, dict[str, Any]], None]
    # Socket.IO sids connected now (counted against settings.max_clients).
    clients: set[str] = field(default_factory=set)
    # Socket.IO sids that connected with the right token: allowed to change the gallery.
    writers: set[str] = field(default_factory=set)
    # sid -> its capture in progress (or finished and waiting for a name).
    captures: dict[str, CaptureSession] = field(default_factory=dict)

    @property
    def open_viewing(self) -> bool:
        return self.settings.open_viewing

    def people_changed(self) -> None:
        """Tell every page that the gallery changed, so they reload their people list; and
        every live track to decide its name afresh (no deleted or old name lingers)."""
        self.worker.gallery_changed()
        self.broadcast("people_changed", {"gallery_size": self.people.gallery_size})


def state_of(app: Flask | None = None) -> LiveState:
    return (app or current_app).extensions[EXTENSION]
