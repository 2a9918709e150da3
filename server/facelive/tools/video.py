"""`facelive video`: recognise the faces of a recorded video (or a camera, or a stream) against
the gallery, and write the video back with boxes and names drawn, and/or the faces as JSON.

The output has the input's size, frame rate and frame count: every frame read is written,
annotated or not. Faces are detected every `every` frames and at every scene cut and carried
in between; tracks (recognition/tracks.py) decide each track's name from all its frames and
end at scene cuts (recognition/scenes.py). A frame that is detected is worked on as a live
stream's is (Recognizer.recognize_tracked, recognition/economy.py): the whole frame searched
every few frames, only the tracks' predicted boxes in between, and a face embedded only when
its track needs it.
The JSON: {"video": {...}, "embedder": ..., "frames": [{"index": i,
"faces": [{"box": [x, y, w, h], "name", "track", "detected", "embedded", "distance",
"confidence"}]}]}.
"""

from __future__ import annotations

import json
import sys
import time
import unicodedata
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from facelive import wire
from facelive.atomic import atomic_path
from facelive.recognition.names import UNKNOWN
from facelive.recognition.recognizer import Recognizer
from facelive.recognition.scenes import CutDetector
from facelive.recognition.tracks import TrackedFace, Tracker
from facelive.tools.errors import ToolError
from facelive.tools.progress import Progress

FOURCC = "mp4v"
KNOWN_COLOUR = (80, 200, 60)  # BGR
UNKNOWN_COLOUR = (60, 60, 220)


@dataclass(frozen=True)
class Source:
    """An opened input: a file, a camera (its index) or a stream URL."""

    capture: cv2.VideoCapture
    label: str
    live: bool
    fps: float
    frame_count: int  # 0 when unknown (cameras, streams)


def open_source(spec: str) -> Source:
    """"0" -> camera 0; "rtsp://..." / "http://..." -> a stream; anything else a file path.
    ToolError (one line) when it cannot be opened."""
    if spec.isdigit():
        capture, live = cv2.VideoCapture(int(spec)), True
    elif "://" in spec:
        capture, live = cv2.VideoCapture(spec), True
    else:
        path = Path(spec)
        if not path.is_file():
            raise ToolError(f"{spec}: no such video file")
        capture, live = cv2.VideoCapture(str(path)), False
    if not capture.isOpened():
        capture.release()
        raise ToolError(f"{spec}: cannot open this as a video (unknown format or damaged)")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    # Cameras and some streams report 0 (or nonsense); 30 is what webcams usually deliver.
    fps = fps if 1.0 <= fps <= 240.0 else 30.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return Source(capture, spec, live, fps, max(count, 0) if not live else 0)


def _frames(source: Source, limit: int | None) -> Iterator[np.ndarray]:
    read = 0
    while limit is None or read < limit:
        ok, frame = source.capture.read()
        if not ok or frame is None:
            return
        read += 1
        yield frame


def read_frames(path: Path, count: int | None = None, longest: int | None = None
                ) -> list[np.ndarray]:
    """A video file's first `count` frames (all when None) as RGB uint8 (H, W, 3), scaled down
    to at most `longest` px on the longer side when given."""
    source = open_source(str(path))
    frames = []
    try:
        for bgr in _frames(source, count):
            h, w = bgr.shape[:2]
            scale = 1.0 if longest is None else min(1.0, longest / max(h, w))
            if scale < 1.0:
                bgr = cv2.resize(bgr, (round(w * scale), round(h * scale)),
                                 interpolation=cv2.INTER_AREA)
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        source.capture.release()
    return frames


def ascii_label(name: str) -> str:
    """OpenCV's built-in fonts draw ASCII only: "Zoë" -> "Zoe"; other scripts become '?'."""
    folded = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in folded if not unicodedata.combining(c))
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def draw(frame: np.ndarray, faces: list[TrackedFace]) -> None:
    """Boxes and names onto a BGR frame, in place."""
    height, width = frame.shape[:2]
    thickness = max(1, round(min(height, width) / 300))
    scale = max(0.4, min(height, width) / 720)
    for face in faces:
        left_x, top_y, right_x, bottom_y = face.box
        x1, y1 = max(int(left_x), 0), max(int(top_y), 0)
        x2, y2 = min(int(right_x), width - 1), min(int(bottom_y), height - 1)
        if x2 <= x1 or y2 <= y1:
            continue
        colour = UNKNOWN_COLOUR if face.name == UNKNOWN else KNOWN_COLOUR
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, thickness)
        label = ascii_label(face.name)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = y1 - th - base - 4 if y1 - th - base - 4 >= 0 else y2  # above, else below
        left = max(min(x1, width - tw - 4), 0)  # slid left rather than cut at the edge
        cv2.rectangle(frame, (left, top), (left + tw + 4, top + th + base + 4), colour, -1)
        cv2.putText(frame, label, (left + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)


def _face_json(face: TrackedFace) -> dict[str, Any]:
    return {**wire.face_json(face.box), "name": face.name, "track": face.track,
            "detected": face.detected, "embedded": face.embedded,
            "distance": wire.rounded(face.distance),
            "confidence": wire.rounded(face.confidence)}


def annotate_video(
    recognizer: Recognizer,
    spec: str,
    out_path: Path | None = None,
    json_path: Path | None = None,
    every: int = 1,
    max_frames: int | None = None,
    tracker: Tracker | None = None,
    err: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Run the video (see the module docstring). Outputs appear only when complete; from a
    camera or stream, Ctrl-C ends the recording and keeps it. Returns a JSON-ready summary:
    frames, width, height, fps, detected_frames, scene_cuts, frames_per_name, seconds."""
    if every < 1:
        raise ToolError(f"--every must be >= 1, got {every}")
    if max_frames is not None and max_frames < 1:
        raise ToolError(f"--max-frames must be >= 1, got {max_frames}")
    source = open_source(spec)
    tracker = tracker if tracker is not None else recognizer.new_tracker()
    started = time.monotonic()
    if recognizer.gallery_size == 0:
        print("warning: the gallery is empty: every face will be unknown", file=err)
    frames_json: list[dict[str, Any]] = []
    per_name: dict[str, int] = {}
    index = detected_frames = scene_cuts = 0
    cut_detector = CutDetector()
    size: tuple[int, int] | None = None
    try:
        with ExitStack() as stack:
            writer: cv2.VideoWriter | None = None
            frames = _frames(source, max_frames)
            first = next(frames, None)
            if first is None:
                raise ToolError(f"{spec}: no frame could be read (empty or damaged video)")
            size = (first.shape[1], first.shape[0])
            if out_path is not None:
                tmp = stack.enter_context(atomic_path(
                    Path(out_path), suffix=".mp4", cannot_create=ToolError))
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*FOURCC),
                                         source.fps, size)
                if not writer.isOpened():
                    raise ToolError(f"{out_path}: cannot write an {FOURCC} video here")
                stack.callback(writer.release)
            # Both outputs are renamed into place together, when the stack closes.
            json_tmp = None
            if json_path is not None:
                json_tmp = stack.enter_context(
                    atomic_path(Path(json_path), cannot_create=ToolError))
            bar = stack.enter_context(Progress(source.frame_count, "video"))

            def chained() -> Iterator[np.ndarray]:
                yield first
                yield from frames

            try:
                for frame in chained():
                    if (frame.shape[1], frame.shape[0]) != size:
                        raise ToolError(f"{spec}: frame {index} changes size; not supported")
                    cut = cut_detector.is_cut(frame)
                    scene_cuts += cut
                    # Detection is due every `every` frames and at the first frame of a shot.
                    if index % every == 0 or cut:
                        # One frame at a time: what the next frame needs depends on this one.
                        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                        pairs = recognizer.recognize_tracked([rgb], [tracker], [cut])[0]
                        faces = [shown for _, shown in pairs]
                        detected_frames += 1
                    else:
                        faces = tracker.carry(index)
                    for face in faces:
                        per_name[face.name] = per_name.get(face.name, 0) + 1
                    frames_json.append({"index": index, "faces": [_face_json(f) for f in faces]})
                    if writer is not None:
                        draw(frame, faces)
                        writer.write(frame)
                    index += 1
                    bar.advance()
            except KeyboardInterrupt:
                if not source.live:
                    raise
                print(f"stopped after {index} frames", file=err)
            if writer is not None:
                writer.release()
            summary = {
                "frames": index,
                "width": size[0],
                "height": size[1],
                "fps": round(source.fps, 3),
                "detected_frames": detected_frames,
                "scene_cuts": scene_cuts,
                "frames_per_name": dict(sorted(per_name.items())),
                "seconds": round(time.monotonic() - started, 1),
                "embedder": recognizer.embedder_name,
            }
            if json_tmp is not None:
                payload = {"video": {k: summary[k] for k in ("frames", "width", "height", "fps")},
                           "source": spec, "embedder": recognizer.embedder_name,
                           "every": every, "scene_cuts": scene_cuts, "frames": frames_json}
                json_tmp.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    finally:
        source.capture.release()
    return summary
