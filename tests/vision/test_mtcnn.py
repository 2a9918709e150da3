"""MTCNN on real images and video: faces found, landmarks sane, both weight sets agree, a video
stream never retraces, and bad input gives no faces rather than an exception."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive.models import store
from facelive.models.mtcnn_weights import load_mtcnn_weights, read_pypi_lz4
from facelive.settings import Settings
from facelive.vision import boxes as bx
from facelive.vision.mtcnn import MTCNN, Detection, normalise

# Centres (x, y) of the six faces in multiface.jpg, checked by eye on a drawing of the boxes.
MULTIFACE_CENTRES = [(264, 299), (463, 185), (588, 100), (657, 246), (760, 520), (904, 498)]


def _rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(frames) == count, f"could read only {len(frames)} frames of {path}"
    return frames


def _contains(det: Detection, x: float, y: float) -> bool:
    x1, y1, x2, y2 = det.box
    return bool(x1 <= x <= x2 and y1 <= y <= y2)


@pytest.fixture(scope="module")
def detector(models_dir: Path) -> MTCNN:
    return MTCNN.from_settings(Settings(models_dir=models_dir))


@pytest.fixture(scope="module")
def multiface(test_data: Path) -> np.ndarray:
    return _rgb(test_data / "group" / "multiface.jpg")


@pytest.fixture(scope="module")
def lfw_paths(lfw_dir: Path) -> list[Path]:
    paths = sorted(lfw_dir.glob("*/*.jpg"))
    assert len(paths) > 1000, "LFW looks incomplete"
    return paths


# --- Real images ---------------------------------------------------------------------------


def test_all_six_faces_in_multiface(detector: MTCNN, multiface: np.ndarray) -> None:
    found = detector.detect(multiface)
    assert len(found) == 6
    scores = [d.score for d in found]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.9
    for x, y in MULTIFACE_CENTRES:
        assert sum(_contains(d, x, y) for d in found) == 1, f"face at {(x, y)}"
    for det in found:
        assert det.box.shape == (4,) and det.box.dtype == np.float32
        assert det.landmarks.shape == (5, 2) and det.landmarks.dtype == np.float32
        width, height = det.box[2] - det.box[0], det.box[3] - det.box[1]
        assert 60 < width < 120 and 80 < height < 150  # faces here are about 80x105 px
        for x, y in det.landmarks:
            assert _contains(det, x, y)
        left_eye, right_eye, nose, mouth_left, mouth_right = det.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_grayscale_and_rgba_are_accepted(detector: MTCNN, multiface: np.ndarray) -> None:
    rgba = np.dstack([multiface, np.full(multiface.shape[:2], 255, np.uint8)])
    reference = detector.detect(multiface)
    same = detector.detect(rgba)
    assert [d.score for d in same] == [d.score for d in reference]
    gray = cv2.cvtColor(multiface, cv2.COLOR_RGB2GRAY)
    for image in (gray, gray[:, :, None]):
        found = detector.detect(image)
        assert len(found) == 6
        for x, y in MULTIFACE_CENTRES:
            assert any(_contains(d, x, y) for d in found)


def test_face_cut_by_the_border(detector: MTCNN, multiface: np.ndarray) -> None:
    # Cut the left face (box about x 225..304) at x = 250, through its left eye.
    cut = np.ascontiguousarray(multiface[:, 250:])
    found = detector.detect(cut)
    edge = [d for d in found if _contains(d, 264 - 250 + 5, 299)]
    assert len(edge) == 1
    assert edge[0].box[0] < 0  # the box reaches past the image edge, where the face goes on


def test_lfw_detection_rate(detector: MTCNN, lfw_paths: list[Path]) -> None:
    # A deterministic sample of ~600 images: every 22nd of the sorted paths.
    sample = lfw_paths[::22]
    assert len(sample) >= 600
    missed = []
    for start in range(0, len(sample), 8):
        chunk = sample[start : start + 8]
        for path, found in zip(chunk, detector.detect_batch([_rgb(p) for p in chunk]), strict=True):
            # LFW faces are centred in the 250x250 image; a detection must cover the centre.
            if not any(_contains(d, 125, 125) for d in found):
                missed.append(path.name)
    rate = 1 - len(missed) / len(sample)
    assert rate >= 0.995, f"detection rate {rate:.4f}, missed {missed}"


def test_det_npy_and_pypi_weights_detect_the_same(
    detector: MTCNN, models_dir: Path, lfw_paths: list[Path]
) -> None:
    if store.model_state(models_dir, "mtcnn-pypi") != "present":
        pytest.skip("the PyPI mtcnn weights are not available offline")
    other = MTCNN(read_pypi_lz4(store.require(models_dir, "mtcnn-pypi")))
    images = [_rgb(p) for p in lfw_paths[5::250]]
    assert len(images) >= 50
    total = 0
    for image in images:
        a, b = detector.detect(image), other.detect(image)
        assert len(a) == len(b)
        for da, db in zip(a, b, strict=True):
            np.testing.assert_allclose(da.box, db.box, atol=0.01)
            np.testing.assert_allclose(da.landmarks, db.landmarks, atol=0.01)
            assert abs(da.score - db.score) < 1e-4
        total += len(a)
    assert total >= len(images)


# --- Video: no retracing -------------------------------------------------------------------


def test_video_stream_does_not_retrace(models_dir: Path, test_data: Path) -> None:
    frames = _video_frames(test_data / "video" / "short_hamilton_clip.mp4", 40)
    _, weights = load_mtcnn_weights(models_dir)
    fresh = MTCNN(weights)  # its own trace count, whatever other tests ran
    counts, with_faces = [], 0
    for frame in frames:
        with_faces += bool(fresh.detect(frame))
        counts.append(fresh.trace_count)
    assert with_faces >= 30, f"faces in only {with_faces} of 40 frames"
    assert counts[-1] == counts[1], f"retraced during the stream: {counts}"
    assert counts[-1] <= 3

    before = fresh.trace_count
    other_sizes = [
        cv2.resize(frames[0], (480, 270)),
        cv2.resize(frames[0], (1280, 720)),
        np.ascontiguousarray(frames[0][:, 100:460]),  # portrait 360x360 -> square
        np.ascontiguousarray(cv2.resize(frames[0], (640, 360))[:, 150:420]),  # portrait
    ]
    for image in other_sizes:
        fresh.detect(image)
    assert fresh.trace_count - before <= 3, "new frame sizes must add a bounded number of traces"


def test_detect_batch_matches_detect(detector: MTCNN, test_data: Path, multiface) -> None:
    frames = _video_frames(test_data / "video" / "WDA_KatieHill_000.mp4", 3)
    tiny = np.zeros((5, 5, 3), np.uint8)
    images = [*frames, multiface, tiny, cv2.resize(frames[0], (256, 256))]
    batched = detector.detect_batch(images)
    assert len(batched[0]) == 1 and len(batched[3]) == 6 and batched[4] == []
    for image, found in zip(images, batched, strict=True):
        single = detector.detect(image)
        assert len(single) == len(found)
        for a, b in zip(single, found, strict=True):
            np.testing.assert_allclose(a.box, b.box, atol=0.05)


# --- Bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(1, 1, 3), (5, 5, 3), (11, 11, 3), (12, 40, 3), (39, 300, 3), (480, 640, 3)]
)
def test_tiny_and_blank_images_have_no_faces(detector: MTCNN, shape: tuple[int, ...]) -> None:
    assert detector.detect(np.zeros(shape, np.uint8)) == []


def test_image_smaller_than_min_face_has_none_but_crop_of_a_face_does(
    detector: MTCNN, multiface: np.ndarray
) -> None:
    face = np.ascontiguousarray(multiface[240:360, 215:315])  # 120x100, one face
    assert len(detector.detect(face)) == 1
    small = cv2.resize(face, (30, 36))  # below min_face_size = 40
    assert detector.detect(small) == []


def test_empty_batch_and_wrong_input(detector: MTCNN) -> None:
    assert detector.detect_batch([]) == []
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        detector.detect(np.zeros((100, 100, 2), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        detector.detect(np.zeros((2, 100, 100, 3), np.uint8))


# --- The arithmetic behind it --------------------------------------------------------------


def test_tiled_canvas_gives_pnet_exactly_what_each_level_alone_gives(
    detector: MTCNN, lfw_paths: list[Path], multiface: np.ndarray
) -> None:
    for image in (_rgb(lfw_paths[0]), multiface, np.ascontiguousarray(multiface[:, :333])):
        height, width = image.shape[:2]
        scales = bx.pyramid_scales(height, width, 40, 0.709)
        layout = bx.plan_canvas(height, width, scales)
        canvas = bx.fill_canvas(bx.Octaves(image), layout)
        prob, reg = detector.pnet(normalise(canvas[None]))
        for (oy, ox), (h, w) in zip(layout.offsets, layout.sizes, strict=True):
            level = canvas[oy : oy + h, ox : ox + w]
            ny, nx = (h - 12) // 2 + 1, (w - 12) // 2 + 1
            alone_prob, alone_reg = detector.pnet(normalise(level[None]))
            r, c = oy // 2, ox // 2
            np.testing.assert_allclose(
                prob[0, r : r + ny, c : c + nx], alone_prob[0, :ny, :nx], atol=1e-4
            )
            np.testing.assert_allclose(
                reg[0, r : r + ny, c : c + nx], alone_reg[0, :ny, :nx], atol=1e-4
            )


@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (250, 250), (630, 1200), (41, 300)])
def test_canvas_levels_do_not_overlap_and_fit(shape: tuple[int, int]) -> None:
    scales = bx.pyramid_scales(*shape, 40, 0.709)
    layout = bx.plan_canvas(*shape, scales)
    rows, cols = layout.canvas_shape
    taken = np.zeros((rows, cols), np.int32)
    for (oy, ox), (h, w) in zip(layout.offsets, layout.sizes, strict=True):
        assert oy % 2 == 0 and ox % 2 == 0
        assert oy + h <= rows and ox + w <= cols
        taken[oy : oy + h, ox : ox + w] += 1
    assert taken.max() == 1
    if min(shape) >= 200:  # (tiny canvases are padded up to a minimum size)
        assert taken.sum() / taken.size > 0.6  # not mostly padding
    # Every cell box is a 12 px window of its level mapped back into the image.
    assert np.all(layout.cell_boxes[:, :2] >= 0)
    assert np.all(layout.cell_boxes[:, 2] <= shape[1] + 1e-3)
    assert np.all(layout.cell_boxes[:, 3] <= shape[0] + 1e-3)
    assert len(np.unique(layout.cell_index)) == len(layout.cell_index)


def test_pyramid_scales() -> None:
    scales = bx.pyramid_scales(480, 640, 40, 0.709)
    assert scales[0] == pytest.approx(0.3)
    assert np.allclose(np.diff(np.log(scales)), np.log(0.709))
    assert 480 * scales[-1] >= 12 > 480 * scales[-1] * 0.709
    assert bx.pyramid_scales(39, 1000, 40, 0.709) == []


def test_nms_union_and_min() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], np.float32)
    scores = np.array([0.9, 0.8, 0.95, 0.6], np.float32)
    # IoU(0, 1) = 81 / 119 = 0.68; box 3 lies inside box 0 (IoU 0.16, overlap of the min 1.0).
    assert bx.nms(boxes, scores, 0.5).tolist() == [2, 0, 3]
    assert bx.nms(boxes, scores, 0.7).tolist() == [2, 0, 1, 3]
    assert bx.nms(boxes, scores, 0.7, mode="min").tolist() == [2, 0]
    groups = np.array([0, 1, 0, 0])
    assert sorted(bx.nms_per_group(boxes, scores, groups, 0.5).tolist()) == [0, 1, 2, 3]
    assert bx.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).size == 0


def test_regression_and_squaring() -> None:
    boxes = np.array([[10, 20, 30, 60]], np.float32)  # 20 wide, 40 high
    moved = bx.apply_regression(boxes, np.array([[0.1, -0.25, 0.5, 0.0]], np.float32))
    np.testing.assert_allclose(moved, [[12, 10, 40, 60]])
    np.testing.assert_allclose(bx.square(boxes), [[0, 20, 40, 60]])
    points = np.array([[0.0, 1.0, 0.5, 0.25, 0.75, 0.0, 0.0, 0.5, 1.0, 1.0]], np.float32)
    np.testing.assert_allclose(
        bx.landmarks_from_offsets(boxes, points)[0],
        [[10, 20], [30, 20], [20, 40], [15, 60], [25, 60]],
    )


def test_crops_are_exact_and_black_outside(multiface: np.ndarray) -> None:
    octaves = bx.Octaves(multiface)
    boxes = np.array([[100.4, 50.2, 124.4, 74.2], [-12, -12, 12, 12], [0, 0, 400, 400]], np.float32)
    out = np.zeros((3, 24, 24, 3), np.uint8)
    used = bx.crop_patches(octaves, boxes, 24, out)
    np.testing.assert_array_equal(used[0], [100, 50, 124, 74])
    np.testing.assert_array_equal(out[0], multiface[50:74, 100:124])
    assert not out[1][:12, :12].any() and out[1][12:, 12:].any()
    # A big box comes from a halved copy of the image, on that copy's pixel grid.
    assert used[2][2] - used[2][0] >= 24 and np.all(np.abs(used[2] - [0, 0, 400, 400]) <= 16)


def test_batch_buckets_are_few_and_tight() -> None:
    buckets = {bx.batch_bucket(n, 16, 256) for n in range(1, 300)}
    assert buckets == {16, 24, 32, 48, 64, 96, 128, 192, 256}
    assert all(bx.batch_bucket(n, 2, 64) >= n for n in range(1, 65))
    # The warm-up feeds exactly these sizes: every bucket a live batch can use, no other.
    assert bx.bucket_sizes(16, 256) == sorted(buckets)
    assert bx.bucket_sizes(2, 64) == sorted({bx.batch_bucket(n, 2, 64) for n in range(1, 99)})


def test_warm_up_runs_each_network_once_per_graph_and_leaves_the_detector_as_it_was(
    models_dir: Path, multiface: np.ndarray
) -> None:
    _, weights = load_mtcnn_weights(models_dir)
    fresh = MTCNN(weights)
    fresh.warm_up(480, 640)
    assert fresh.trace_count == 3  # every shape fed, one graph per network
    assert fresh.thresholds == (0.6, 0.7, 0.7)
    frame = cv2.resize(multiface, (640, 480))
    assert len(fresh.detect(frame)) >= 5
    assert fresh.trace_count == 3
