"""A fake camera for Chromium: a video file turned into the raw Y4M stream that
`--use-file-for-fake-video-capture` plays (and loops). Written here from OpenCV's frames: Y4M is
a one-line header and raw I420 planes, so no ffmpeg is needed."""

from __future__ import annotations

from pathlib import Path

import cv2


def write_y4m(video: Path, out: Path, size: int, count: int, fps: int = 25,
              height: int | None = None) -> Path:
    """The first `count` frames of `video`, scaled to size x size (or size x height; both
    even), as Y4M."""
    height = height or size
    capture = cv2.VideoCapture(str(video))
    written = 0
    try:
        with out.open("wb") as handle:
            handle.write(f"YUV4MPEG2 W{size} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            while written < count:
                ok, bgr = capture.read()
                if not ok:
                    break
                bgr = cv2.resize(bgr, (size, height), interpolation=cv2.INTER_AREA)
                handle.write(b"FRAME\n")
                # I420: the Y plane, then U and V at half resolution, as Y4M's 420 wants.
                handle.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
                written += 1
    finally:
        capture.release()
    if written < count:
        raise RuntimeError(f"{video}: only {written} frames, {count} wanted")
    return out
