"""Faces followed from frame to frame of one stream (a live connection, a video), and each
track's name decided from the evidence of all its frames.

Linking: detections of a new frame are matched to the tracks of earlier frames, best box
overlap (IoU) first, among the pairs that overlap enough AND whose faces look alike (the
Euclidean distance between the detection's embedding and the track's running mean embedding
is under `link_distance`; a close look-alike may also bridge a small overlap, as a face moving
fast between two live frames does). A new person stepping into the place of the last one is so
a new track, not the old track's name on a new face. Between detections (video --every N) a
track is carried at its measured velocity. A track unmatched for `max_age` frames ends; all
end at `reset` (a scene cut).

Names (hysteresis): every frame is a vote for the recogniser's verdict (a person, or unknown),
weighted by the face's quality (0..1), and older votes fade by `decay` a frame:
    evidence[v] = decay * evidence[v] + quality    for this frame's verdict v
- a new track shows its first frame's verdict at once if that match is sure (distance well
  inside the threshold, see Observation.sure), else unknown;
- an unknown verdict just over the threshold (within KEEP_FRACTION of it) whose nearest person
  is the track's own is no vote: the tracked face is the same, seen a little worse;
- an unknown track is named p when evidence[p] >= `enter` (two agreeing frames in a row at
  full quality) and evidence[p] > evidence[unknown]: one lucky frame does not name a stranger;
- a named track changes name (or becomes unknown) only when the other verdict's evidence
  exceeds its own by `leave` (about six frames in a row against it): one poor frame does not
  flip it.
Votes are kept by person id, and the shown name is looked up in the gallery's current names at
every frame (`names`): a renamed person's track shows the new name; a deleted person's evidence
is dropped at once, so the name cannot linger.

Economy (issue 17, recognition/economy.py): a detection may come without an embedding (an
observation with `embedded` False): it moves its track and casts no vote; the track keeps its
name, distance and confidence. `expected` gives the boxes a tracked detection pass looks at,
`embedding_plan` which faces of a frame need an embedding before `update`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from facelive.recognition.economy import Economy, EmbedState, embed_reason
from facelive.recognition.names import UNKNOWN
from facelive.recognition.results import corners_of

# Identity evidence key of "no one in the gallery".
_NOBODY = -1


@dataclass(frozen=True)
class Observation:
    """One recognised face of a frame: box (x1, y1, x2, y2) corners in pixels, the
    recogniser's verdict (name, person id or None), distance/confidence, the face's embedding
    (unit vector, None when unknown), its quality as evidence (0..1) and whether the match is
    sure (named on the first frame of a track)."""

    box: tuple[float, float, float, float]
    name: str
    distance: float | None = None
    confidence: float = 0.0
    person: int | None = None
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    quality: float = 1.0
    sure: bool = False
    nearest: int | None = None
    keep: bool = False
    # False: detected but not embedded this frame (the track's decision is kept); yaw: the
    # face's (vision/quality.py), for the economy's "marked change of pose".
    embedded: bool = True
    yaw: float = 0.0


@dataclass(frozen=True)
class TrackedFace:
    """A face as shown in one frame: track id, box (x1, y1, x2, y2) corners in pixels, the
    track's name and person, whether it was detected in this frame (False: carried between
    detections), and the recogniser's distance/confidence at the track's last detection."""

    track: int
    box: tuple[float, float, float, float]
    name: str
    detected: bool
    distance: float | None
    confidence: float
    person: int | None = None
    embedded: bool = False


def _corners(box: Iterable[float]) -> np.ndarray:
    return np.array([float(v) for v in box], np.float64).reshape(4)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes, 0..1."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class _Track:
    id: int
    corners: np.ndarray  # (4,) x1, y1, x2, y2 at last_frame
    last_frame: int
    embedding: np.ndarray | None
    distance: float | None
    confidence: float
    evidence: dict[int, float] = field(default_factory=dict)  # person id (or _NOBODY) -> sum
    shown: int = _NOBODY
    fresh: bool = False  # names forgotten: the next frame votes as a first frame
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    # The last embedding (economy): frame (None: never), side and yaw then, and how many
    # embedded frames in a row agreed with the shown name.
    embedded_at: int | None = None
    embedded_side: float = 0.0
    embedded_yaw: float = 0.0
    agree: int = 0

    def embedded(self, frame: int, obs: Observation) -> None:
        self.embedded_at = frame
        self.embedded_side = _side(self.corners)
        self.embedded_yaw = obs.yaw

    def embed_state(self) -> EmbedState:
        return EmbedState(self.embedded_at, self.embedded_side, self.embedded_yaw,
                          self.agree, self.fresh)

    def at(self, frame: int) -> np.ndarray:
        return self.corners + self.velocity * (frame - self.last_frame)

    def look_distance(self, embedding: np.ndarray | None) -> float | None:
        if self.embedding is None or embedding is None:
            return None
        return float(np.linalg.norm(self.embedding - embedding))


class Tracker:
    """Feed it every frame of one stream in order: `update` for a frame searched for faces
    (possibly none found), `carry` for a frame that was not searched. Not thread-safe: one
    stream, one caller at a time."""

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_age: int = 30,
        link_distance: float = 0.45,
        decay: float = 0.8,
        enter: float = 1.75,
        leave: float = 2.0,
        link_dims: int | None = None,
    ) -> None:
        if not 0.0 < iou_threshold < 1.0 or max_age < 1 or not 0.0 < decay < 1.0:
            raise ValueError("need 0 < iou_threshold < 1, max_age >= 1 and 0 < decay < 1")
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.link_distance = link_distance
        # Faces are compared on the first link_dims values of their embeddings (None: all):
        # fused's dlib-resnet half, the one every face has (tracker_for).
        self.link_dims = link_dims
        self.decay, self.enter, self.leave = decay, enter, leave
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_detection = -1
        self._last_frame = -1
        self._last_full = -(10**9)
        self._names: dict[int, str] = {}
        self.label_changes = 0  # shown-name changes of tracks that already had a frame
        # Search every frame whole: Capture Examples judges poses by the landmarks, and the
        # tracked pass's (O-Net on a predicted crop) jitter enough to pass a still face as new.
        self.whole_frames = False

    @property
    def next_frame(self) -> int:
        """The index the next frame of a stream without its own numbering should get."""
        return self._last_frame + 1

    def _linkable(self, overlap: float, look: float | None) -> bool:
        if look is None:  # no embeddings (tests, a recogniser without them): boxes decide
            return overlap >= self.iou_threshold
        if look > self.link_distance:
            return False
        # A face that clearly looks the same may have moved further between two frames.
        close = look <= 0.6 * self.link_distance
        return overlap >= self.iou_threshold or (overlap > 0.05 and close)

    def update(
        self, frame: int, observations: Sequence[Observation],
        names: Mapping[int, str] | None = None,
    ) -> list[TrackedFace]:
        """Match this frame's faces to the tracks; returns one TrackedFace per observation,
        in the order given. names: the gallery's current {person id: name}; None trusts the
        observations' names (a recogniser whose gallery does not change)."""
        self._last_frame = max(self._last_frame, frame)
        self._tracks = [t for t in self._tracks if frame - t.last_frame <= self.max_age]
        if names is None:
            names = {**self._names,
                     **{o.person: o.name for o in observations if o.person is not None}}
        else:
            self._drop_gone(names)
        self._names = dict(names)
        boxes = [_corners(o.box) for o in observations]
        looks = [None if o.embedding is None else _unit(np.asarray(o.embedding)[: self.link_dims])
                 for o in observations]
        matched = self._match(frame, boxes, looks)
        out = []
        for oi, (obs, box, look) in enumerate(zip(observations, boxes, looks, strict=True)):
            found = matched.get(oi)
            if found is None:
                track = _Track(self._next_id, box, frame, look, obs.distance, obs.confidence)
                self._next_id += 1
                self._tracks.append(track)
                if obs.embedded:
                    self._first_vote(track, obs)
                    track.embedded(frame, obs)
            else:
                track = found
                step = frame - track.last_frame
                if step > 0:
                    # Smoothed per-frame motion: steadies the carried boxes of --every N.
                    track.velocity = 0.5 * track.velocity + 0.5 * (box - track.corners) / step
                track.corners, track.last_frame = box, frame
                if not obs.embedded:
                    # Moved, not looked at again: the track's decision stands.
                    out.append(self._shown(track, frame, detected=True))
                    continue
                track.distance, track.confidence = obs.distance, obs.confidence
                track.embedded(frame, obs)
                if look is not None:
                    mixed = look if track.embedding is None else (
                        0.7 * track.embedding + 0.3 * look)
                    track.embedding = _unit(mixed)
                before = track.shown
                if track.fresh:
                    track.fresh = False
                    self._first_vote(track, obs)
                else:
                    self._vote(track, obs)
                if track.shown != before:
                    self.label_changes += 1
            out.append(self._shown(track, frame, detected=True, embedded=obs.embedded))
        self._last_detection = frame
        return out

    def _match(
        self, frame: int, boxes: Sequence[np.ndarray], looks: Sequence[np.ndarray | None]
    ) -> dict[int, _Track]:
        """Detection index -> its track: best overlap first among the linkable pairs."""
        pairs = []
        for ti, track in enumerate(self._tracks):
            predicted = track.at(frame)
            for oi, (box, look) in enumerate(zip(boxes, looks, strict=True)):
                overlap = iou(predicted, box)
                if self._linkable(overlap, track.look_distance(look)):
                    pairs.append((overlap, ti, oi))
        pairs.sort(reverse=True)
        matched: dict[int, _Track] = {}
        used: set[int] = set()
        for _, ti, oi in pairs:
            if ti in used or oi in matched:
                continue
            used.add(ti)
            matched[oi] = self._tracks[ti]
        return matched

    # ------------------------------------------------------------ economy (issue 17)
    def full_pass_due(self, frame: int, economy: Economy) -> bool:
        """Whether this frame needs the whole-frame detector (see recognition/economy.py)."""
        return (self.whole_frames or frame - self._last_full >= economy.full_every
                or self._last_detection < 0)

    def expected(self, frame: int) -> np.ndarray:
        """(K, 4) x1, y1, x2, y2: where the faces found at the last detection should be in
        this frame (their tracks' motion carried on)."""
        boxes = [t.at(frame) for t in self._tracks if t.last_frame == self._last_detection]
        return np.array(boxes, np.float32).reshape(-1, 4)

    def searched(self, frame: int, full: bool) -> None:
        """Record that this frame was searched whole (full) or only at the expected boxes (a
        face lost there is searched for in the whole frame at once: recognition/streams.py)."""
        if full:
            self._last_full = frame

    def embedding_plan(
        self, frame: int, boxes: Sequence[Iterable[float]], yaws: Sequence[float],
        economy: Economy,
    ) -> list[str | None]:
        """For this frame's detections ((x1, y1, x2, y2) boxes and their yaws), why each must be
        embedded before `update` (economy.embed_reason), None where its track's decision can
        be kept. Linking here is by box alone, as `update` links faces without embeddings."""
        corners = [_corners(b) for b in boxes]
        live = [t for t in self._tracks if frame - t.last_frame <= self.max_age]
        saved, self._tracks = self._tracks, live
        try:
            matched = self._match(frame, corners, [None] * len(corners))
        finally:
            self._tracks = saved
        out = []
        for oi, (box, yaw) in enumerate(zip(corners, yaws, strict=True)):
            track = matched.get(oi)
            state = None if track is None else track.embed_state()
            out.append(embed_reason(state, frame, _side(box), yaw, economy))
        return out

    def _drop_gone(self, names: Mapping[int, str]) -> None:
        """Forget the evidence for people no longer in the gallery (deleted, cleared)."""
        for track in self._tracks:
            for person in [p for p in track.evidence if p != _NOBODY and p not in names]:
                del track.evidence[person]
            if track.shown != _NOBODY and track.shown not in names:
                track.shown = _NOBODY

    @staticmethod
    def _verdict(obs: Observation) -> int:
        return _NOBODY if obs.person is None or obs.name == UNKNOWN else int(obs.person)

    def _first_vote(self, track: _Track, obs: Observation) -> None:
        verdict = self._verdict(obs)
        track.evidence[verdict] = max(0.0, min(1.0, obs.quality))
        track.shown = verdict if (verdict == _NOBODY or obs.sure) else _NOBODY
        track.agree = 1 if verdict == track.shown else 0

    def _vote(self, track: _Track, obs: Observation) -> None:
        verdict = self._verdict(obs)
        if verdict == _NOBODY and obs.keep and obs.nearest == track.shown:
            # Just over the threshold, and still nearest to the track's own person: the same
            # face (the track says so) seen a little worse; no vote against the name, and
            # not settled either: the next frames are looked at again.
            track.agree = 0
            return
        self._tally(track, verdict)
        evidence = track.evidence
        for key in evidence:
            evidence[key] *= self.decay
        evidence[verdict] = evidence.get(verdict, 0.0) + max(0.0, min(1.0, obs.quality))
        shown = evidence.get(track.shown, 0.0)
        best = max(evidence, key=lambda key: evidence[key])
        if best == track.shown:
            return
        if track.shown == _NOBODY:
            # Naming a face that was unknown: enough agreeing evidence, more than against.
            if evidence[best] >= self.enter and evidence[best] > shown:
                track.shown = best
        elif evidence[best] >= shown + self.leave:
            track.shown = best

    @staticmethod
    def _tally(track: _Track, verdict: int) -> None:
        """Count agreeing embedded frames in a row (before this frame's vote moves the name:
        a verdict that differs from what is shown unsettles the track)."""
        track.agree = track.agree + 1 if verdict == track.shown else 0

    def _shown(
        self, track: _Track, frame: int, detected: bool, embedded: bool = False
    ) -> TrackedFace:
        x1, y1, x2, y2 = (float(v) for v in track.at(frame))
        person = None if track.shown == _NOBODY else track.shown
        name = UNKNOWN if person is None else self._names.get(person, UNKNOWN)
        return TrackedFace(track.id, (x1, y1, x2, y2), name, detected,
                           track.distance, track.confidence, person, embedded)

    def forget_names(self) -> None:
        """The gallery changed (a person deleted, renamed, re-enrolled): tracks keep their
        faces but start their names afresh from the next frame's evidence."""
        for track in self._tracks:
            track.evidence.clear()
            track.shown = _NOBODY
            track.fresh = True

    def reset(self) -> None:
        """End every track (a scene cut: whoever comes next is someone new)."""
        self._tracks = []
        self._last_detection = -1
        self._last_full = -(10**9)

    def carry(self, frame: int) -> list[TrackedFace]:
        """The faces found at the last detected frame, moved on to this one."""
        self._last_frame = max(self._last_frame, frame)
        return [self._shown(t, frame, detected=False) for t in self._tracks
                if t.last_frame == self._last_detection]


def _side(corners: np.ndarray) -> float:
    return float(min(corners[2] - corners[0], corners[3] - corners[1]))


def _unit(vector: np.ndarray | None) -> np.ndarray | None:
    if vector is None:
        return None
    vector = np.asarray(vector, np.float64)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None


# The linking distance as a multiple of the embedder's verification threshold (its LFW
# same/different boundary): 0.45 for dlib-resnet (0.417), where it was first set. Each
# embedder spreads one person's frames over its own scale (facenet's boundary is 1.10), so
# each links on its own.
LINK_FRACTION = 0.45 / 0.4172


def link_distance_for(verify_threshold: float) -> float:
    """The tracker's link_distance for an embedder with this verification threshold."""
    return LINK_FRACTION * float(verify_threshold)


def tracker_for(embedder: object) -> Tracker:
    """A tracker that links faces on `embedder`'s scale: its verification threshold. The fused
    embedder's trackers link on its dlib-resnet half (`dlib`), at dlib-resnet's threshold:
    its small faces are embedded by that half alone (small_faces.py), so it is the one part
    every face's embedding has."""
    dlib = getattr(embedder, "dlib", None)
    part = embedder if dlib is None else dlib
    scale = float(getattr(part, "verify_threshold", 0.0) or 0.0)
    if scale <= 0:
        return Tracker()
    return Tracker(link_distance=link_distance_for(scale),
                   link_dims=None if dlib is None else int(dlib.dim))


# A first-frame match this far inside the threshold names a new track at once.
SURE_FRACTION = 0.9
# An unknown verdict this close to a named track's own person is no vote against its name.
KEEP_FRACTION = 1.25


def observations(
    faces: Sequence[object], threshold: float, embedded: Sequence[bool] | None = None,
    yaws: Sequence[float] | None = None,
) -> list[Observation]:
    """The recogniser's faces of one frame (RecognizedFace) as tracker observations. A face's
    `quality` (0..1), where the recogniser gives one, weighs it as evidence. embedded: per
    face, whether it was embedded this frame (default all); yaws: per face (default 0)."""
    out = []
    for k, face in enumerate(faces):
        distance = getattr(face, "distance", None)
        person = getattr(face, "person", None)
        nearest = getattr(face, "nearest", None)
        quality = getattr(face, "quality", None)  # None: not measured, full weight
        # A face judged by a rule of its own (a small face of the fused embedder) is sure or
        # kept against that rule's threshold, on the scale of its own distance.
        own = getattr(face, "threshold", None)
        limit = threshold if own is None else float(own)
        within = distance is not None and distance <= SURE_FRACTION * limit
        keep = (nearest is not None and distance is not None
                and distance <= KEEP_FRACTION * limit)
        out.append(Observation(
            corners_of(face.box),  # type: ignore[attr-defined]
            str(face.name),  # type: ignore[attr-defined]
            distance, float(getattr(face, "confidence", 0.0) or 0.0), person,
            getattr(face, "embedding", None), 1.0 if quality is None else float(quality),
            person is not None and within, nearest, keep,
            True if embedded is None else bool(embedded[k]),
            0.0 if yaws is None else float(yaws[k]),
        ))
    return out
