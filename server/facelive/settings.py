"""One typed settings object, read from environment variables and command-line flags.

Every other module takes a `Settings` (or the few fields it needs) as an argument; nothing else
reads the environment, so a test can build any configuration without touching `os.environ`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from facelive.errors import FaceLiveError
from facelive.recognition.economy import Economy
from facelive.recognition.openset import DEFAULT_TARGET_FAR

EmbedderChoice = Literal["auto", "facenet", "fused", "dlib-resnet"]
EMBEDDER_CHOICES: tuple[str, ...] = ("auto", "facenet", "fused", "dlib-resnet")


def _xdg_data_home(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "facelive"


class SettingsError(FaceLiveError, ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _parse_float_triple(name: str, raw: str) -> tuple[float, float, float]:
    parts = [p.strip() for p in raw.split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise SettingsError(f"{name} must be three comma-separated numbers, got {raw!r}") from None
    if len(values) != 3 or not all(0.0 < v < 1.0 for v in values):
        raise SettingsError(f"{name} must be three numbers in (0, 1), got {raw!r}")
    return values


def _parse_flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def _parse_number(name: str, raw: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Everything that can be configured.

    Env var -> field: FACELIVE_DATA -> data_dir, FACELIVE_MODELS -> models_dir,
    FACELIVE_MODELS_SOURCE -> models_source, FACELIVE_EMBEDDER -> embedder,
    FACELIVE_MIN_FACE -> min_face_size, FACELIVE_MTCNN_THRESHOLDS -> mtcnn_thresholds,
    FACELIVE_PYRAMID_FACTOR -> pyramid_factor, FACELIVE_MAX_IMAGE_PIXELS -> max_image_pixels,
    FACELIVE_MAX_IMAGE_BYTES -> max_image_bytes, FACELIVE_MAX_UPLOAD_FILES -> max_upload_files,
    FACELIVE_MAX_UPLOAD_BYTES -> max_upload_bytes.
    Recognition: FACELIVE_KNN_K -> knn_k, FACELIVE_THRESHOLD -> match_threshold,
    FACELIVE_TARGET_FAR -> target_far.
    Streams (live and `facelive video`): FACELIVE_FULL_EVERY -> full_every,
    FACELIVE_EMBED_EVERY -> embed_every.
    Web server (`facelive serve`): FACELIVE_HOST -> host, FACELIVE_PORT -> port,
    FACELIVE_CERTFILE -> certfile, FACELIVE_KEYFILE -> keyfile, FACELIVE_TOKEN -> token,
    FACELIVE_ALLOWED_ORIGINS -> allowed_origins (comma-separated),
    FACELIVE_MAX_FRAME_BYTES -> max_frame_bytes, FACELIVE_MAX_FRAME_PIXELS -> max_frame_pixels,
    FACELIVE_MAX_CLIENT_FPS -> max_client_fps, FACELIVE_MAX_CLIENTS -> max_clients,
    FACELIVE_WEB_DIR -> web_dir, FACELIVE_VIEW_TOKEN -> view_token,
    FACELIVE_OPEN_VIEWING -> open_viewing (1/0), FACELIVE_ACCESS_LOG -> access_log (1/0),
    FACELIVE_TF_LOG -> tf_log (1/0).
    Several workers (docs/scaling.md): FACELIVE_DATABASE_URL -> database_url (postgresql://...;
    unset: the SQLite file in data_dir), FACELIVE_MESSAGE_QUEUE -> message_queue (redis://...).
    models_dir defaults to <data_dir>/models: a data dir given by flag or env brings its own
    models, as the README says and as a user who moves the data dir expects.
    """

    data_dir: Path = field(default_factory=lambda: _xdg_data_home(os.environ))
    models_dir: Path = field(default_factory=lambda: _xdg_data_home(os.environ) / "models")
    # A local folder holding model files (same layout as models_dir, or the flat layout of
    # ../shared/models); consulted before any download.
    models_source: Path | None = None
    embedder: EmbedderChoice = "auto"
    # MTCNN: smallest face searched for, in pixels; the three stage thresholds; pyramid factor.
    min_face_size: int = 40
    mtcnn_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    pyramid_factor: float = 0.709
    # Decoded-image guards: refuse before decoding anything bigger (decompression bombs).
    max_image_pixels: int = 40_000_000
    max_image_bytes: int = 20 * 1024 * 1024
    # Uploads (REST enrol/identify): files per request and bytes per request.
    max_upload_files: int = 20
    max_upload_bytes: int = 100 * 1024 * 1024
    # Recognition: neighbours consulted per face; the largest distance (between unit
    # embeddings, 0..2) still called a match, None = the embedder's calibrated threshold.
    knn_k: int = 5
    match_threshold: float | None = None
    # Share of strangers allowed a name at the gallery's size (recognition/openset.py says
    # why its default is 0.9%).
    target_far: float = DEFAULT_TARGET_FAR
    # Streams (recognition/economy.py): the whole-frame detector every `full_every` frames
    # (and at cuts and lost faces), only the tracks' predicted boxes in between; a settled
    # track's face embedded again every `embed_every` frames. 1 and 1: everything every frame.
    full_every: int = Economy.full_every
    embed_every: int = Economy.embed_every
    # Web server. Without certfile/keyfile a self-signed certificate is made in data_dir/tls.
    host: str = "0.0.0.0"
    port: int = 5000  # 0: any free port (the start-up banner shows which)
    certfile: Path | None = None
    keyfile: Path | None = None
    # Needed for changes (gallery edits); without one, a token is made and kept in data_dir.
    token: str | None = None
    # Viewing (the live view, the people list, thumbnails, identify) needs the owner's token
    # or this read-only one, made and kept in data_dir like the owner's when not given;
    # open_viewing lets anyone view (a kiosk). Changes always need the owner's token.
    view_token: str | None = None
    open_viewing: bool = False
    # One log line per HTTP request (method, path, status, ms).
    access_log: bool = True
    # TensorFlow's own start-up notices (absl, oneDNN) on the console.
    tf_log: bool = False
    # Origins besides the server's own that may open a Socket.IO connection (e.g. a proxy's).
    allowed_origins: tuple[str, ...] = ()
    # Live frames are small JPEGs; these guards are far tighter than the ones for uploads.
    max_frame_bytes: int = 1024 * 1024
    max_frame_pixels: int = 2048 * 2048
    # Frames per second one live connection may send. A camera delivers about 30, so more
    # would only repeat pictures; the page sends one frame at a time and reaches ~25 fps on a
    # CPU, so it is never held back there, while a script flooding frames is. 0: no limit.
    max_client_fps: int = 30
    # Live connections at once (viewers included). The load benchmark streams from 16 clients;
    # twice that leaves room, and beyond it each client of one CPU would get ~1 fps anyway.
    max_clients: int = 32
    # The browser page (index.html, js/, node_modules/); None: the checkout's web/ folder.
    web_dir: Path | None = None
    # The gallery in PostgreSQL, shared by several workers; None: gallery.sqlite3 in data_dir.
    database_url: str | None = None
    # Socket.IO's message queue (Redis), so that an event one worker emits reaches the pages
    # connected to the others; None: one worker, no queue.
    message_queue: str | None = None

    def __post_init__(self) -> None:
        if self.embedder not in EMBEDDER_CHOICES:
            raise SettingsError(
                f"FACELIVE_EMBEDDER must be one of {', '.join(EMBEDDER_CHOICES)}, "
                f"got {self.embedder!r}"
            )
        if not 8 <= self.min_face_size <= 10_000:
            raise SettingsError(f"FACELIVE_MIN_FACE must be 8..10000, got {self.min_face_size}")
        if self.max_upload_files < 1:
            raise SettingsError(
                f"FACELIVE_MAX_UPLOAD_FILES must be >= 1, got {self.max_upload_files}"
            )
        if self.max_upload_bytes < 1024:
            raise SettingsError(
                f"FACELIVE_MAX_UPLOAD_BYTES must be >= 1024, got {self.max_upload_bytes}"
            )
        if not 0.3 <= self.pyramid_factor <= 0.95:
            raise SettingsError(
                f"FACELIVE_PYRAMID_FACTOR must be in [0.3, 0.95], got {self.pyramid_factor}"
            )
        if not 1 <= self.knn_k <= 100:
            raise SettingsError(f"FACELIVE_KNN_K must be 1..100, got {self.knn_k}")
        if self.match_threshold is not None and not 0.0 < self.match_threshold <= 2.0:
            raise SettingsError(
                f"FACELIVE_THRESHOLD must be in (0, 2], got {self.match_threshold}"
            )
        if not 0.0 < self.target_far < 1.0:
            raise SettingsError(f"FACELIVE_TARGET_FAR must be in (0, 1), got {self.target_far}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"FACELIVE_PORT must be 0..65535, got {self.port}")
        if (self.certfile is None) != (self.keyfile is None):
            raise SettingsError("FACELIVE_CERTFILE and FACELIVE_KEYFILE go together: give both")
        if self.token is not None and len(self.token) < 8:
            raise SettingsError("FACELIVE_TOKEN must be at least 8 characters")
        if self.view_token is not None and len(self.view_token) < 8:
            raise SettingsError("FACELIVE_VIEW_TOKEN must be at least 8 characters")
        if self.view_token is not None and self.view_token == self.token:
            raise SettingsError("FACELIVE_VIEW_TOKEN must differ from FACELIVE_TOKEN")
        if self.max_frame_bytes < 1024 or self.max_frame_pixels < 64 * 64:
            raise SettingsError(
                "FACELIVE_MAX_FRAME_BYTES must be >= 1024 and FACELIVE_MAX_FRAME_PIXELS >= 4096"
            )
        if not 0 <= self.max_client_fps <= 1000:
            raise SettingsError(
                f"FACELIVE_MAX_CLIENT_FPS must be 0..1000 (0: no limit), got {self.max_client_fps}"
            )
        if not 1 <= self.full_every <= 30:
            raise SettingsError(f"FACELIVE_FULL_EVERY must be 1..30, got {self.full_every}")
        if not 1 <= self.embed_every <= 300:
            raise SettingsError(f"FACELIVE_EMBED_EVERY must be 1..300, got {self.embed_every}")
        if not 1 <= self.max_clients <= 10_000:
            raise SettingsError(f"FACELIVE_MAX_CLIENTS must be 1..10000, got {self.max_clients}")
        if self.database_url is not None and not self.database_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise SettingsError(
                "FACELIVE_DATABASE_URL must be a postgresql:// URL (unset: the SQLite file in "
                "the data dir)"
            )
        if self.message_queue is not None and not self.message_queue.startswith(
            ("redis://", "rediss://")
        ):
            raise SettingsError("FACELIVE_MESSAGE_QUEUE must be a redis:// or rediss:// URL")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Build settings from `env` (default `os.environ`), then apply non-None `overrides`
        (command-line flags win over the environment)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        home = _xdg_data_home(env)
        values["data_dir"] = Path(env.get("FACELIVE_DATA") or home)
        if env.get("FACELIVE_MODELS"):
            values["models_dir"] = Path(env["FACELIVE_MODELS"])
        if env.get("FACELIVE_MODELS_SOURCE"):
            values["models_source"] = Path(env["FACELIVE_MODELS_SOURCE"])
        if env.get("FACELIVE_EMBEDDER"):
            values["embedder"] = env["FACELIVE_EMBEDDER"].strip().lower()
        for key, name in (
            ("min_face_size", "FACELIVE_MIN_FACE"),
            ("max_image_pixels", "FACELIVE_MAX_IMAGE_PIXELS"),
            ("max_image_bytes", "FACELIVE_MAX_IMAGE_BYTES"),
            ("max_upload_files", "FACELIVE_MAX_UPLOAD_FILES"),
            ("max_upload_bytes", "FACELIVE_MAX_UPLOAD_BYTES"),
            ("knn_k", "FACELIVE_KNN_K"),
            ("port", "FACELIVE_PORT"),
            ("max_frame_bytes", "FACELIVE_MAX_FRAME_BYTES"),
            ("max_frame_pixels", "FACELIVE_MAX_FRAME_PIXELS"),
            ("max_client_fps", "FACELIVE_MAX_CLIENT_FPS"),
            ("max_clients", "FACELIVE_MAX_CLIENTS"),
            ("full_every", "FACELIVE_FULL_EVERY"),
            ("embed_every", "FACELIVE_EMBED_EVERY"),
        ):
            if env.get(name):
                values[key] = _parse_number(name, env[name], int)
        for key, name in (
            ("pyramid_factor", "FACELIVE_PYRAMID_FACTOR"),
            ("match_threshold", "FACELIVE_THRESHOLD"),
            ("target_far", "FACELIVE_TARGET_FAR"),
        ):
            if env.get(name):
                values[key] = _parse_number(name, env[name], float)
        if env.get("FACELIVE_MTCNN_THRESHOLDS"):
            values["mtcnn_thresholds"] = _parse_float_triple(
                "FACELIVE_MTCNN_THRESHOLDS", env["FACELIVE_MTCNN_THRESHOLDS"]
            )
        for key, name in (("open_viewing", "FACELIVE_OPEN_VIEWING"),
                          ("access_log", "FACELIVE_ACCESS_LOG"), ("tf_log", "FACELIVE_TF_LOG")):
            if env.get(name):
                values[key] = _parse_flag(name, env[name])
        for key, name in (("host", "FACELIVE_HOST"), ("token", "FACELIVE_TOKEN"),
                          ("view_token", "FACELIVE_VIEW_TOKEN"),
                          ("database_url", "FACELIVE_DATABASE_URL"),
                          ("message_queue", "FACELIVE_MESSAGE_QUEUE")):
            if env.get(name):
                values[key] = env[name].strip()
        for key, name in (
            ("certfile", "FACELIVE_CERTFILE"),
            ("keyfile", "FACELIVE_KEYFILE"),
            ("web_dir", "FACELIVE_WEB_DIR"),
        ):
            if env.get(name):
                values[key] = Path(env[name])
        if env.get("FACELIVE_ALLOWED_ORIGINS"):
            values["allowed_origins"] = tuple(
                o.strip().rstrip("/") for o in env["FACELIVE_ALLOWED_ORIGINS"].split(",")
                if o.strip()
            )
        for key, value in overrides.items():
            if value is None:
                continue
            if key not in {f.name for f in dataclasses.fields(cls)}:
                raise TypeError(f"unknown setting {key!r}")
            if key in ("data_dir", "models_dir", "models_source", "certfile", "keyfile",
                       "web_dir"):
                value = Path(value)
            values[key] = value
        # After the flags: --data-dir D alone puts the models under D too.
        values.setdefault("models_dir", Path(values["data_dir"]) / "models")
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)
