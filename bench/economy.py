"""The stream economy on the shared videos (issue 17): how soon entering faces are boxed, and
how much work is spared.

    python bench/economy.py [--json] [--bound 3] [--models-dir D] [--data DIR]
                            [--full-every 3] [--embed-every 10]

Each clip of ../shared/data/video is streamed frame by frame, at most 640 px on its longer
side (what the page sends a 640x480 camera at), through `Recognizer.recognize_tracked` with
an empty gallery: the path of a live connection and of `facelive video`. The reference is the
full MTCNN on every frame; an entry is a face the reference finds that was not there in the
frame before (recognition/entries.py), and it counts as boxed within the bound when the
stream's answer covers it no later than `bound` - 1 frames after. Work: share of frames that
ran the full detector, share of detected faces embedded, median detect/embed ms per frame (the
reference's detector ms beside them). Scene cuts as `facelive video` finds them.

Target: >= 99% of entries (that last at least `bound` frames in the reference) boxed within
the bound.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchutil import machine, report

REPO = Path(__file__).resolve().parents[1]
LONGEST = 640


def run_clip(recognizer: Any, frames: list[np.ndarray], bound: int) -> dict[str, Any]:
    from facelive.recognition.entries import entries, within
    from facelive.recognition.scenes import CutDetector
    from facelive.recognition.tracks import Tracker

    detector = recognizer.engine.detector
    reference, ref_ms = [], []
    for frame in frames:
        start = time.perf_counter()
        reference.append([d.box for d in detector.detect(frame)])
        ref_ms.append((time.perf_counter() - start) * 1000)
    tracker, cuts = Tracker(), CutDetector(rgb=True)
    found, detect_ms, embed_ms = [], [], []
    faces = embedded = full = 0
    for frame in frames:
        last_full = tracker._last_full  # noqa: SLF001 (the bench counts full passes)
        pairs = recognizer.recognize_tracked([frame], [tracker], [cuts.is_cut(frame)])[0]
        full += tracker._last_full != last_full  # noqa: SLF001
        detect_ms.append(recognizer.last_timings["detect"])
        embed_ms.append(recognizer.last_timings["embed"])
        boxes = []
        for face, _ in pairs:
            boxes.append(face.box)
            embedded += face.embedding is not None
        faces += len(pairs)
        found.append(boxes)
    listed = entries(reference, found)
    boxed, lasting = within(listed, bound)
    return {
        "frames": len(frames),
        "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
        "entries": len(listed),
        "entries_lasting_bound": lasting,
        "boxed_within_bound": boxed,
        "delays": sorted(e.delay for e in listed if e.delay is not None),
        "never_boxed": sum(e.delay is None for e in listed),
        "reference_faces": sum(len(r) for r in reference),
        "faces_answered": faces,
        "full_pass_share": round(full / len(frames), 3),
        "embedded_share": round(embedded / max(1, faces), 3),
        "detect_ms_median": round(statistics.median(detect_ms), 2),
        "embed_ms_median": round(statistics.median(embed_ms), 2),
        "detect_plus_embed_ms_mean": round(statistics.fmean(
            d + e for d, e in zip(detect_ms, embed_ms, strict=True)), 2),
        "reference_detect_ms_median": round(statistics.median(ref_ms), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--bound", type=int, default=3, help="entry bound in frames")
    parser.add_argument("--full-every", type=int)
    parser.add_argument("--embed-every", type=int)
    parser.add_argument("--models-dir")
    parser.add_argument("--data", default=os.environ.get("FACELIVE_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    from facelive.recognition.recognizer import Recognizer
    from facelive.settings import Settings
    from facelive.tools.video import read_frames

    clips = sorted((Path(args.data) / "video").glob("*.mp4"))
    if not clips:
        raise SystemExit(f"bench: no videos under {args.data}/video")
    load_before = os.getloadavg()[0]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="facelive-economy-") as tmp:
        settings = Settings.from_env(data_dir=tmp, models_dir=args.models_dir,
                                     full_every=args.full_every, embed_every=args.embed_every)
        with Recognizer.from_settings(settings) as recognizer:
            for clip in clips:
                frames = read_frames(clip, longest=LONGEST)
                rows[clip.name] = run_clip(recognizer, frames, args.bound)
            economy = recognizer.economy
    boxed = sum(r["boxed_within_bound"] for r in rows.values())
    lasting = sum(r["entries_lasting_bound"] for r in rows.values())
    results = {
        "machine": machine(),
        "economy": {"full_every": economy.full_every, "embed_every": economy.embed_every},
        "bound_frames": args.bound,
        "load_average_1min": {"before": round(load_before, 2),
                              "after": round(os.getloadavg()[0], 2)},
        "clips": rows,
        "entries_boxed_within_bound": f"{boxed}/{lasting}",
        "share": round(boxed / lasting, 4) if lasting else None,
        "targets_met": {"entries>=99%": bool(lasting) and boxed >= 0.99 * lasting},
    }
    return report(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
