"""The live inference worker: the latest frame of each client, processed in batches off the
event loop.

One green thread owns the queue; the work (JPEG decoding and the recognizer, i.e. TensorFlow)
runs through `eventlet.tpool`, on a real OS thread, while the green thread (and so every other
connection) waits without blocking the loop. Replies are emitted from the green thread only:
Socket.IO must not be driven from a foreign OS thread.

Queueing rule: each client has at most one waiting frame; a newer one replaces it (latest wins),
so a client that sends faster than the server works gets replies for some frames only, and
memory stays bounded by the number of clients. Each round takes the waiting frames of several
clients and runs them as one recognizer batch.

Tracks: each client (one stream) has its own face tracker (recognition/tracks.py), made at its
first frame and dropped when it leaves; a recognizer with `recognize_streams` names faces by
track, and a gallery change (`gallery_changed`) makes every track decide its name afresh.
A stream's scene cuts (recognition/scenes.py: a client switching cameras or sources) end its
tracks, so the next frame is searched whole and its faces embedded afresh (issue 17: between
cuts, the recognizer works only where a frame brings something new).

Rate rule: each client may send `max_fps` frames a second (a token bucket with a small burst);
a frame over it is answered with a `rate_limited` error at once and never queued.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventlet import tpool
from eventlet.green import threading as green_threading

from facelive.app.live_recognizer import LiveRecognizer
from facelive.app.protocol import (
    Frame,
    FrameError,
    RateLimited,
    error_reply,
    faces_reply,
    frame_seq,
)
from facelive.recognition.scenes import CutDetector
from facelive.recognition.tracks import Tracker
from facelive.vision.image import ImageError, decode_image

log = logging.getLogger(__name__)

# A client counts as streaming while its latest frame is this recent; the worker waits a moment
# for streaming clients' next frames so that they share a batch instead of alternating.
ACTIVE_S = 1.0

# Frames a client may send back to back above its rate: absorbs the jitter of a page pacing
# itself at the limit (a frame grabbed late, then one on time), while a flood is cut off after a
# handful.
RATE_BURST = 5


def on_inference_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run fn on the inference OS thread and return its result; the calling green thread waits,
    the event loop does not. Every call into the recognizer (live batches, and the gallery
    operations of app/people.py) must go through here: the server gives tpool one thread, so
    they run one at a time, and the recognizer's locks, green once eventlet has patched
    `threading`, are never contended from two OS threads."""
    return tpool.execute(fn, *args, **kwargs)


class FrameRate:
    """Per-client token bucket: on average `per_second` frames a second, up to `burst` back to
    back. A refused frame spends nothing, so a client that sends without pause still gets
    `per_second` frames a second through."""

    def __init__(self, per_second: float, burst: int = RATE_BURST) -> None:
        self.per_second = per_second
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # sid -> (tokens, as of when)

    def take(self, sid: str, now: float) -> float:
        """Spend one frame of the client's allowance at `now` (seconds, monotonic). Returns 0.0
        when it had one, else the seconds until it has one again."""
        tokens, then = self._buckets.get(sid, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - then) * self.per_second)
        if tokens >= 1.0 - 1e-9:  # float noise must not refuse a frame that is on time
            self._buckets[sid] = (max(0.0, tokens - 1.0), now)
            return 0.0
        self._buckets[sid] = (tokens, now)
        return (1.0 - tokens) / self.per_second

    def forget(self, sid: str) -> None:
        self._buckets.pop(sid, None)


@dataclass
class _Outcome:
    """What the OS thread hands back for one frame: an event name and its payload."""

    event: str
    payload: dict[str, Any]


class LiveWorker:
    """emit: `(event, payload, sid)`; recognizer: see facelive.app.live_recognizer. `observer`,
    when set, is called `(sid, frame, faces)` after each answered frame, on the green side
    (Capture Examples judges the frames of a capturing client there). max_fps: frames a second
    per client (`admit`); None or 0: no limit."""

    def __init__(
        self,
        emit: Callable[[str, dict[str, Any], str], None],
        spawn: Callable[[Callable[[], None]], Any],
        recognizer: LiveRecognizer,
        max_pixels: int,
        max_bytes: int,
        max_batch: int = 8,
        gather_s: float = 0.010,
        max_fps: int | None = None,
    ) -> None:
        self._emit = emit
        self._spawn = spawn
        self.recognizer = recognizer
        self._max_pixels = max_pixels
        self._max_bytes = max_bytes
        self._max_batch = max_batch
        self._gather_s = gather_s
        self.observer: Callable[[str, Frame, list[dict[str, Any]]], None] | None = None
        # Clients whose frames get the whole-frame detector every time (a capturing client).
        self.whole_frames: Callable[[str], bool] = lambda sid: False
        self._rate = FrameRate(max_fps) if max_fps else None
        self._pending: dict[str, Frame] = {}
        self._last_seq: dict[str, int] = {}
        self._last_seen: dict[str, float] = {}
        self._trackers: dict[str, Tracker] = {}
        self._cuts: dict[str, CutDetector] = {}
        self._stale: set[str] = set()  # clients whose tracks' names predate a gallery change
        self._by_track = callable(getattr(recognizer, "recognize_streams", None))
        self._wake = green_threading.Event()
        self._started = False

    # ----------------------------------------------------------- green side (event loop)
    def admit(self, sid: str, message: Any, now: float) -> None:
        """Count a `frame` message (any, checked or not: a flood of garbage costs too) against
        the client's rate. Raises RateLimited, with the message's seq when it has one."""
        if self._rate is None:
            return
        wait_s = self._rate.take(sid, now)
        if wait_s > 0.0:
            # Rounded first: float noise must not turn 300 ms into 301.
            retry_ms = max(1, math.ceil(round(wait_s * 1000.0, 6)))
            raise RateLimited(self._rate.per_second, retry_ms, frame_seq(message))

    def submit(self, sid: str, frame: Frame) -> None:
        """Queue a checked frame as the client's latest. Raises FrameError for a seq that does
        not increase (it would break the reply order the client relies on)."""
        last = self._last_seq.get(sid)
        if last is not None and frame.seq <= last:
            raise FrameError(f"stale frame: seq {frame.seq} is not above {last}", frame.seq)
        self._last_seq[sid] = frame.seq
        self._last_seen[sid] = frame.received
        if sid not in self._trackers:
            self._trackers[sid] = self._new_tracker()
            self._cuts[sid] = CutDetector(rgb=True)
        self._pending[sid] = frame  # latest wins: an older waiting frame is dropped here
        self._wake.set()
        if not self._started:
            self._started = True
            self._spawn(self._loop)

    def forget(self, sid: str) -> None:
        """A client left: drop its waiting frame and its state."""
        self._pending.pop(sid, None)
        self._last_seq.pop(sid, None)
        self._last_seen.pop(sid, None)
        self._trackers.pop(sid, None)
        self._cuts.pop(sid, None)
        self._stale.discard(sid)
        if self._rate is not None:
            self._rate.forget(sid)

    def gallery_changed(self) -> None:
        """Someone was added, renamed or deleted: no track may keep a name from before."""
        self._stale = set(self._trackers)

    @property
    def streams(self) -> int:
        """Clients with tracking state (for tests: it must not outlive the connection)."""
        return len(self._trackers)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending:
                self._gather()
                batch = self._take()
                try:
                    self._run(batch)
                except Exception:  # the loop must outlive anything (an emit that fails)
                    log.exception("live worker: replies failed")

    def _gather(self) -> None:
        """Wait up to gather_s for streaming clients without a waiting frame (their reply has
        just gone out; the next frame is on its way), so that they join this batch."""
        deadline = time.perf_counter() + self._gather_s
        while True:
            now = time.perf_counter()
            missing = any(
                sid not in self._pending and now - seen < ACTIVE_S
                for sid, seen in self._last_seen.items()
            )
            if not missing or now >= deadline:
                return
            self._wake.wait(deadline - now)
            self._wake.clear()

    def _new_tracker(self) -> Tracker:
        make = getattr(self.recognizer, "new_tracker", None)
        return make() if callable(make) else Tracker()

    def _take(self) -> list[tuple[str, Frame]]:
        sids = sorted(self._pending, key=lambda s: self._pending[s].received)[: self._max_batch]
        return [(sid, self._pending.pop(sid)) for sid in sids]

    def _run(self, batch: list[tuple[str, Frame]]) -> None:
        try:
            streams = [(self._trackers.get(sid) or self._new_tracker(),
                        self._cuts.get(sid) or CutDetector(rgb=True), sid in self._stale)
                       for sid, _ in batch]
            for (sid, _), (tracker, _, _) in zip(batch, streams, strict=True):
                tracker.whole_frames = self.whole_frames(sid)  # read on the green side
            self._stale.difference_update(sid for sid, _ in batch)
            outcomes, failure = on_inference_thread(
                self._compute, [frame for _, frame in batch], streams
            )
        except Exception as exc:  # a bug in _compute: still answer every waiting client
            log.exception("live worker: batch failed")
            message = f"server error ({type(exc).__name__}); see the server log"
            outcomes = [_Outcome("error", error_reply(message, f.seq)) for _, f in batch]
            failure = None
        if failure:
            log.error("live worker: recognizer failed\n%s", failure)
        now = time.perf_counter()
        for (sid, frame), outcome in zip(batch, outcomes, strict=True):
            if "ms" in outcome.payload:
                outcome.payload["ms"]["total"] = round((now - frame.received) * 1000.0, 1)
            self._emit(outcome.event, outcome.payload, sid)
            if self.observer is not None and outcome.event == "faces":
                try:
                    self.observer(sid, frame, outcome.payload["faces"])
                except Exception:  # the other clients of the batch still get their replies
                    log.exception("live worker: observer failed")

    # ----------------------------------------------------------- OS thread (tpool)
    def _compute(
        self, frames: list[Frame], streams: list[tuple[Tracker, CutDetector, bool]]
    ) -> tuple[list[_Outcome], str | None]:
        """Decode and recognize; runs on the tpool thread, so it only computes: no emitting,
        no logging (both take green locks), nothing shared with the green side (a client's
        tracker is only ever used here, one batch at a time)."""
        images, decode_ms, errors = [], {}, {}
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            try:
                images.append(decode_image(frame.data, self._max_pixels, self._max_bytes))
            except ImageError as exc:
                errors[i] = f"frame.image: {exc}"
            decode_ms[i] = (time.perf_counter() - start) * 1000.0
        decoded = [i for i in range(len(frames)) if i not in errors]
        faces: list[list[dict[str, Any]]] = []
        failure = None
        if decoded:
            try:
                if self._by_track:
                    trackers, cuts = [], []
                    for i, image in zip(decoded, images, strict=True):
                        tracker, scenes, stale = streams[i]
                        if stale:
                            tracker.forget_names()
                        trackers.append(tracker)
                        cuts.append(scenes.is_cut(image))
                    faces = self.recognizer.recognize_streams(  # type: ignore[attr-defined]
                        images, trackers, cuts)
                else:
                    faces = self.recognizer(images)
                if len(faces) != len(images):
                    raise RuntimeError(f"recognizer gave {len(faces)} results for "
                                       f"{len(images)} frames")
            except Exception as exc:
                failure = traceback.format_exc()
                for i in decoded:
                    errors[i] = f"recognition failed ({type(exc).__name__}); see the server log"
        timings = dict(getattr(self.recognizer, "last_timings", None) or {})
        by_index = dict(zip(decoded, faces, strict=False))
        outcomes = []
        for i, frame in enumerate(frames):
            if i in errors:
                outcomes.append(_Outcome("error", error_reply(errors[i], frame.seq)))
            else:
                ms = {**timings, "decode": decode_ms[i]}
                outcomes.append(
                    _Outcome("faces", faces_reply(frame.seq, by_index[i], ms, len(frames)))
                )
        return outcomes, failure
