"""`facelive video` on a real recorded clip, with a person enrolled from a real photo, and
with inputs it cannot use.

short_hamilton_clip.mp4 (640x360, 29.97 fps, 275 frames) has four shots, found by looking
at its frames (and at its scene cuts, frames 20, 82 and 211):
  0-19    wide shot of the stage: Lin-Manuel Miranda right of centre, a second person (Alex
          Lacamoire, at the piano) at the left;
  20-81   Lacamoire in profile close-up, then the audience;
  82-210  Miranda alone, medium shot;
  211-274 the audience (Barack and Michelle Obama and others).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from tool_cli import run

LIN = "Lin-Manuel Miranda"
# The threshold the dlib-resnet embedder's current recipe (mirror-summed vectors) reaches its
# best 10-fold LFW accuracy at (0.9917, measured over the 6,000 pairs; docs/batch.md). The
# embedder's built-in 0.47 was calibrated before the mirror sum and now lets ~5% of LFW's
# different-person pairs through: on this clip Obama and Lacamoire come out at 0.44-0.47
# from Miranda's photo. Drop the flag once embedders.py carries the recalibrated value.
THRESHOLD = "0.415"


def _is_his_face(index: int, box: list[float]) -> bool:
    x, _, w, _ = box
    return (index < 20 and x + w / 2 > 320) or 82 <= index <= 210


@pytest.mark.parametrize("every", [2])
def test_video_names_the_enrolled_person(
    models_dir: Path, test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    every: int,
) -> None:
    video = test_data / "video"
    common = ["--data-dir", str(tmp_path / "data"), "--models-dir", str(models_dir)]
    code, _, err = run(["enroll", LIN, str(video / "refs" / "lin-manuel-miranda.png"),
                        *common], capsys)
    assert code == 0, err
    out, faces = tmp_path / "out" / "annotated.mp4", tmp_path / "out" / "faces.json"
    code, stdout, err = run(["video", str(video / "short_hamilton_clip.mp4"), "--out", str(out),
                             "--json", str(faces), "--every", str(every), "--threshold",
                             THRESHOLD, *common], capsys)
    assert code == 0, err
    assert "275 frames (640x360 at 29.97 fps)" in stdout

    capture = cv2.VideoCapture(str(out))
    try:
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(29.97, abs=0.01)
        size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        assert size == (640, 360)
        frames = 0
        while capture.read()[0]:
            frames += 1
        assert frames == 275
    finally:
        capture.release()

    payload = json.loads(faces.read_text())
    assert [f["index"] for f in payload["frames"]] == list(range(275))
    assert payload["scene_cuts"] == 3
    his_frames = named = 0
    for frame in payload["frames"]:
        his = [f for f in frame["faces"] if _is_his_face(frame["index"], f["box"])]
        others = [f for f in frame["faces"] if not _is_his_face(frame["index"], f["box"])]
        assert all(f["name"] != LIN for f in others), frame
        if his:
            his_frames += 1
            named += any(f["name"] == LIN for f in his)
    assert his_frames >= 140  # his face is found in nearly all of his 149 frames
    assert named / his_frames >= 0.9, (named, his_frames)
    assert not list(out.parent.glob(".*partial*"))


def test_video_bad_inputs(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data-dir", str(tmp_path / "data"), "--models-dir", str(models_dir)]
    out = tmp_path / "out.mp4"
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("this is not a video\n")
    for source, message in ((not_video, "cannot open this as a video"),
                            (tmp_path / "missing.mp4", "no such video file")):
        code, _, err = run(["video", str(source), "--out", str(out), "--json",
                            str(tmp_path / "f.json"), *common], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage line, exit 2
        run(["video", str(tmp_path / "x.mp4"), "--every", "0", *common])
    assert exit_info.value.code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]


def test_video_at_the_defaults_names_miranda_small_and_large(
    facenet_models_dir: Path, test_data: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 11's clip as a user meets it: both people enrolled from their one photo, `video`
    with no flags, the default embedder (fused, FaceNet's weights being present). Miranda is
    named in >= 95% of the 149 frames he is on screen, his 37-45 px faces of the wide shot
    included (fused judges such small faces by its dlib-resnet half alone), and nobody else
    (the pianist, the audience) ever gets either name wrongly."""
    video = test_data / "video"
    common = ["--data-dir", str(tmp_path / "data"), "--models-dir", str(facenet_models_dir)]
    for name, ref in ((LIN, "lin-manuel-miranda.png"), ("Alex Lacamoire", "alex-lacamoire.png")):
        code, _, err = run(["enroll", name, str(video / "refs" / ref), *common], capsys)
        assert code == 0, err
    faces = tmp_path / "faces.json"
    code, _, err = run(["video", str(video / "short_hamilton_clip.mp4"), "--out",
                        str(tmp_path / "out.mp4"), "--json", str(faces), *common], capsys)
    assert code == 0, err
    payload = json.loads(faces.read_text())
    assert payload["embedder"] == "fused"
    on_screen = named = 0
    small_named = 0
    for frame in payload["frames"]:
        index = frame["index"]
        his = [f for f in frame["faces"] if _is_his_face(index, f["box"])]
        others = [f for f in frame["faces"] if not _is_his_face(index, f["box"])]
        assert all(f["name"] != LIN for f in others), frame
        # Lacamoire is only at the piano in the wide shot (left of centre) and in profile.
        assert all(f["name"] != "Alex Lacamoire" for f in his), frame
        if index < 20 or 82 <= index <= 210:
            on_screen += 1
            hit = any(f["name"] == LIN for f in his)
            named += hit
            small_named += hit and index < 20
    assert on_screen == 149
    assert named / on_screen >= 0.95, (named, on_screen)
    assert small_named >= 18, small_named  # the wide shot: 20 frames of 37-45 px faces
