"""What a frame of a stream needs, so that a stream is worked on only where a frame brings
something new (issue 17).

Detection: the full MTCNN pyramid runs every `full_every` frames, at a scene cut, and on the
frame after one in which a followed face was not found again where its track predicted it
(it turned away, left, was covered, or moved faster than predicted); on the frames in between
only O-Net runs, on each track's predicted box (vision/mtcnn.py, detect_batch's hints). A
face that enters the picture is so boxed by the next full pass: at most `full_every` - 1
frames after the first frame in which the full detector finds it (the entry bound, measured by
bench/economy.py on the shared videos).

Embedding: a detected face linked to a track is embedded again only when its evidence needs
it (`embed_reason`): a new track, a track whose name is not settled yet (fewer than `settle`
embedded frames in a row agreeing with the name it shows), a marked change of size or of pose
(the yaw of vision/quality.py) since its last embedding, a gallery change, or `embed_every`
frames since the last one to keep watch (a new person taking the place of the last one is
caught then, if no cut or full pass separated them before). In between, the face keeps its
track's name, distance and confidence, and its reply says `embedded: false`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Economy:
    """full_every: frames between full detector passes (1: every frame, no tracked
    detection); embed_every: frames after which a settled track is embedded again anyway
    (1: every face every frame); settle: agreeing embedded frames in a row before a track's
    name counts as settled; size_change: ratio of the face's side to its side at the last
    embedding that counts as marked; yaw_change: change of yaw (0 frontal, 1 nose under an
    eye) that counts as marked."""

    full_every: int = 3
    embed_every: int = 30
    settle: int = 3
    size_change: float = 1.3
    yaw_change: float = 0.35

    def __post_init__(self) -> None:
        if self.full_every < 1 or self.embed_every < 1 or self.settle < 1:
            raise ValueError("full_every, embed_every and settle must be >= 1")
        if self.size_change <= 1.0 or self.yaw_change <= 0.0:
            raise ValueError("size_change must be > 1 and yaw_change > 0")

    @property
    def off(self) -> bool:
        """Every frame fully searched and every face embedded: the work of before issue 17."""
        return self.full_every == 1 and self.embed_every == 1


# Everything every frame (tests, `--every`-style comparisons, FACELIVE_FULL_EVERY=1 and
# FACELIVE_EMBED_EVERY=1).
EVERY_FRAME = Economy(full_every=1, embed_every=1)


@dataclass(frozen=True)
class EmbedState:
    """A track's last embedding: the frame (None: never), the face's side in px and yaw
    then, how many embedded frames in a row agreed with the shown name, and whether its
    names were forgotten (a gallery change) since."""

    frame: int | None
    side: float
    yaw: float
    agree: int
    fresh: bool


def embed_reason(
    state: EmbedState | None, frame: int, side: float, yaw: float, economy: Economy
) -> str | None:
    """Why the face of this frame (side px, yaw) linked to a track in `state` (None: no
    track, a new face) must be embedded: "new", "gallery", "unsettled", "size", "pose",
    "watch"; None when the track's decision can be kept."""
    if state is None or state.frame is None:
        return "new"
    if state.fresh:
        return "gallery"
    if economy.embed_every <= 1:
        return "watch"
    if state.agree < economy.settle:
        return "unsettled"
    if state.side > 0 and not (1.0 / economy.size_change
                               <= side / state.side <= economy.size_change):
        return "size"
    if abs(yaw - state.yaw) > economy.yaw_change:
        return "pose"
    if frame - state.frame >= economy.embed_every:
        return "watch"
    return None
