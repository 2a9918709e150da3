"""MTCNN face detection (Zhang, Zhang, Li and Qiao, "Joint Face Detection and Alignment using
Multi-task Cascaded Convolutional Networks", IEEE SPL 2016) in TensorFlow 2, on the original
weights.

Three networks in cascade: P-Net proposes 12x12 windows over an image pyramid, R-Net rejects
most of them on 24x24 crops, O-Net scores the rest on 48x48 crops and adds five landmarks.
The box arithmetic between them is in `facelive.vision.boxes`.

For live video the networks run as a few large TensorFlow calls per frame: all pyramid levels
are tiled into one canvas for a single P-Net call, and R-Net / O-Net each take all their
candidates (of all frames in a batch) at once. Each network is one `tf.function` traced once,
with its batch (and, for P-Net, canvas) dimensions left open, and the shapes actually fed to
it come from a small bucketed set (canvas sides rounded up to 8 steps per octave, candidate
counts padded to 16, 24, 32, 48, ...), so nothing retraces, neither from frame to frame nor
for a new frame size, and TensorFlow's per-shape kernel caches stay small.

The weights were converted from caffe, where images are column-major: the networks were
trained on the image transposed (x <-> y). Instead of transposing every input we transpose
every conv kernel's two spatial axes once, and transpose the feature map back just before the
first dense layer so its flattening order is the one the dense weights expect.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from facelive.models.mtcnn_weights import MtcnnWeights, load_mtcnn_weights
from facelive.settings import Settings
from facelive.vision import boxes as bx
from facelive.vision.graph_function import graph_function

RNET_SIZE = 24
ONET_SIZE = 48
# Overlap thresholds of the reference pipeline: within a pyramid level, across levels, after
# R-Net, and after O-Net (there, of the smaller box, so nested boxes go too).
NMS_LEVEL = 0.5
NMS_PNET = 0.7
NMS_RNET = 0.7
NMS_ONET = 0.7
# Candidate batches are padded to a bucket (see boxes.batch_bucket) between these counts;
# larger sets are split. O-Net starts small: with one face in view it gets only a few.
RNET_BATCH = (16, 256)
ONET_BATCH = (2, 64)
PNET_BATCH_MAX = 4
# Between full passes a stream's faces are looked for only where its tracks predict them
# (detect_batch's hints): O-Net alone scores a square on each predicted box and one a little
# larger (for a face that moved or grew), and its box regression puts the box back on the
# face; P-Net and R-Net, two thirds of a frame's detection, do not run.
HINT_SHIFTS = (0.0,)
HINT_SCALES = (1.0, 1.2)


# --- Layers --------------------------------------------------------------------------------


class Conv:
    """2-D convolution, stride 1, no padding. weights: (kh, kw, in, out) in the transposed
    image convention of the original model; biases: (out,)."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.kernel = tf.constant(params["weights"].transpose(1, 0, 2, 3))
        self.bias = tf.constant(params["biases"])

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.bias_add(tf.nn.conv2d(x, self.kernel, 1, "VALID"), self.bias)


class PReLU:
    """max(x, 0) + alpha * min(x, 0), one learnt slope per channel."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.alpha = tf.constant(params["alpha"])

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.maximum(x, 0.0) + self.alpha * tf.minimum(x, 0.0)


class MaxPool:
    """Max pooling. "SAME" reproduces caffe's round-up output size where the original did."""

    def __init__(self, size: int, stride: int, padding: str) -> None:
        self.size, self.stride, self.padding = size, stride, padding

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.max_pool2d(x, self.size, self.stride, self.padding)


class Flatten:
    """(N, H, W, C) -> (N, W*H*C) in the transposed (caffe) order the dense weights expect."""

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.transpose(x, (0, 2, 1, 3))
        return tf.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3]))


class Dense:
    """Fully connected layer. weights: (in, out); biases: (out,)."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.kernel = tf.constant(params["weights"])
        self.bias = tf.constant(params["biases"])

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.bias_add(tf.matmul(x, self.kernel), self.bias)


def _run(layers: Sequence, x: tf.Tensor) -> tf.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def _face_probability(logits: tf.Tensor) -> tf.Tensor:
    """Softmax over (non-face, face), keeping the face column: sigmoid of the difference."""
    return tf.sigmoid(logits[..., 1] - logits[..., 0])


def normalise(pixels: tf.Tensor) -> tf.Tensor:
    """uint8 RGB -> float32 in [-1, 1), the scaling the networks were trained with."""
    return (tf.cast(pixels, tf.float32) - 127.5) * (1.0 / 128.0)


# --- Networks (layers as in Fig. 2 of the paper) -------------------------------------------


class PNet:
    """Proposal network, fully convolutional; one output per 12x12 window, stride 2.

    12x12x3 -> conv 3x3, 10 -> PReLU -> max-pool 2x2/2 -> conv 3x3, 16 -> PReLU
    -> conv 3x3, 32 -> PReLU -> {face: conv 1x1, 2; box: conv 1x1, 4}
    """

    def __init__(self, w: dict[str, dict[str, np.ndarray]]) -> None:
        self.body = [
            Conv(w["conv1"]), PReLU(w["PReLU1"]), MaxPool(2, 2, "SAME"),
            Conv(w["conv2"]), PReLU(w["PReLU2"]),
            Conv(w["conv3"]), PReLU(w["PReLU3"]),
        ]  # fmt: skip
        self.face = Conv(w["conv4-1"])
        self.box = Conv(w["conv4-2"])

    def __call__(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """x: (N, H, W, 3) normalised -> face probability (N, H', W'), box offsets (N, H', W',
        4) with H' = floor((H - 12) / 2) + 1 for even H."""
        features = _run(self.body, x)
        return _face_probability(self.face(features)), self.box(features)


class RNet:
    """Refinement network on 24x24 crops.

    24x24x3 -> conv 3x3, 28 -> PReLU -> max-pool 3x3/2 -> conv 3x3, 48 -> PReLU
    -> max-pool 3x3/2 -> conv 2x2, 64 -> PReLU -> dense 128 -> PReLU
    -> {face: dense 2; box: dense 4}
    """

    def __init__(self, w: dict[str, dict[str, np.ndarray]]) -> None:
        self.body = [
            Conv(w["conv1"]), PReLU(w["prelu1"]), MaxPool(3, 2, "SAME"),
            Conv(w["conv2"]), PReLU(w["prelu2"]), MaxPool(3, 2, "VALID"),
            Conv(w["conv3"]), PReLU(w["prelu3"]),
            Flatten(), Dense(w["conv4"]), PReLU(w["prelu4"]),
        ]  # fmt: skip
        self.face = Dense(w["conv5-1"])
        self.box = Dense(w["conv5-2"])

    def __call__(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """x: (N, 24, 24, 3) normalised -> face probability (N,), box offsets (N, 4)."""
        features = _run(self.body, x)
        return _face_probability(self.face(features)), self.box(features)


class ONet:
    """Output network on 48x48 crops, with landmarks.

    48x48x3 -> conv 3x3, 32 -> PReLU -> max-pool 3x3/2 -> conv 3x3, 64 -> PReLU
    -> max-pool 3x3/2 -> conv 3x3, 64 -> PReLU -> max-pool 2x2/2 -> conv 2x2, 128 -> PReLU
    -> dense 256 -> PReLU -> {face: dense 2; box: dense 4; landmarks: dense 10}
    """

    def __init__(self, w: dict[str, dict[str, np.ndarray]]) -> None:
        self.body = [
            Conv(w["conv1"]), PReLU(w["prelu1"]), MaxPool(3, 2, "SAME"),
            Conv(w["conv2"]), PReLU(w["prelu2"]), MaxPool(3, 2, "VALID"),
            Conv(w["conv3"]), PReLU(w["prelu3"]), MaxPool(2, 2, "SAME"),
            Conv(w["conv4"]), PReLU(w["prelu4"]),
            Flatten(), Dense(w["conv5"]), PReLU(w["prelu5"]),
        ]  # fmt: skip
        self.face = Dense(w["conv6-1"])
        self.box = Dense(w["conv6-2"])
        self.landmarks = Dense(w["conv6-3"])

    def __call__(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """x: (N, 48, 48, 3) normalised -> face probability (N,), box offsets (N, 4),
        landmarks (N, 10): five x then five y, as fractions of the input box."""
        features = _run(self.body, x)
        return (
            _face_probability(self.face(features)),
            self.box(features),
            self.landmarks(features),
        )


# --- Detector ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """One face. box: (4,) float32 x1, y1, x2, y2 in image pixels (may reach past the image
    edge for a face cut by it); score: O-Net's face probability; landmarks: (5, 2) float32
    (x, y) of left eye, right eye, nose, mouth left, mouth right ("left" = smaller x)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 view or copy of a uint8 RGB, grayscale (H, W) / (H, W, 1) or RGBA
    image; ValueError for anything else."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got shape {image.shape}"
        )
    if image.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return np.ascontiguousarray(image)


@functools.lru_cache(maxsize=64)
def _canvas_layout(
    height: int, width: int, min_face_size: int, factor: float
) -> bx.CanvasLayout | None:
    """The P-Net canvas plan of one image size (None: too small for any face), computed once
    per size: a stream reuses it every frame."""
    scales = bx.pyramid_scales(height, width, min_face_size, factor)
    return bx.plan_canvas(height, width, scales) if scales else None


@dataclass
class _Stage:
    """Candidates of one image between stages: boxes (N, 4) image pixels, scores (N,)."""

    boxes: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> _Stage:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    @classmethod
    def next(cls, boxes: np.ndarray, scores: np.ndarray, shape: tuple[int, int]) -> _Stage:
        """Calibrated boxes -> the next network's input: squared, and only those that still
        overlap the image."""
        boxes = bx.square(boxes)
        ok = bx.keep_valid(boxes, *shape)
        return cls(boxes[ok], scores[ok])


class MTCNN:
    """The three-stage detector. Thread-safe: it holds only read-only TensorFlow state."""

    def __init__(
        self,
        weights: MtcnnWeights,
        min_face_size: int = 40,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
    ) -> None:
        if min_face_size < 1:
            raise ValueError(
                f"min_face_size must be a positive number of pixels, got {min_face_size}"
            )
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.pnet = PNet(weights["pnet"])
        self.rnet = RNet(weights["rnet"])
        self.onet = ONet(weights["onet"])
        self._traces = 0
        self._lock = threading.Lock()
        # One graph per network: the batch (and, for P-Net, canvas) dimensions are left open,
        # while the shapes actually fed come from a small bucketed set.
        self._pnet_fn = graph_function([tf.TensorSpec([None, None, None, 3], tf.uint8)])(
            self._pnet_graph)
        self._rnet_fn = graph_function(
            [tf.TensorSpec([None, RNET_SIZE, RNET_SIZE, 3], tf.uint8)])(self._rnet_graph)
        self._onet_fn = graph_function(
            [tf.TensorSpec([None, ONET_SIZE, ONET_SIZE, 3], tf.uint8)])(self._onet_graph)

    @classmethod
    def from_settings(cls, settings: Settings) -> MTCNN:
        _model, weights = load_mtcnn_weights(settings.models_dir)
        return cls(
            weights,
            min_face_size=settings.min_face_size,
            thresholds=settings.mtcnn_thresholds,
            factor=settings.pyramid_factor,
        )

    @property
    def trace_count(self) -> int:
        """How many concrete graphs have been traced so far (all three networks)."""
        return self._traces

    # Graph bodies: Python here runs only while tracing, so it counts the traces.

    def _count_trace(self) -> None:
        with self._lock:
            self._traces += 1

    def _pnet_graph(self, canvases: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        self._count_trace()
        return self.pnet(normalise(canvases))

    def _rnet_graph(self, patches: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        self._count_trace()
        return self.rnet(normalise(patches))

    def _onet_graph(self, patches: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        self._count_trace()
        return self.onet(normalise(patches))

    # Public API

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in one RGB uint8 (H, W, 3) image (grayscale and RGBA are converted), best
        score first. Faces smaller than min_face_size may be missed; an image smaller than it
        has none."""
        return self.detect_batch([image])[0]

    def detect_batch(
        self, images: Sequence[np.ndarray],
        hints: Sequence[np.ndarray | None] | None = None,
    ) -> list[list[Detection]]:
        """`detect` for several images, sharing network calls: images of one size share the
        P-Net call, and all candidates of all images share the R-Net and O-Net calls.

        hints: per image, None (search all of it) or the (K, 4) x1, y1, x2, y2 boxes where
        faces are expected (a stream's tracks, predicted to this frame): then only O-Net runs,
        on squares around those boxes (HINT_SHIFTS x HINT_SCALES), which costs a fraction of
        the pyramid and finds no face elsewhere. K = 0 finds nothing, at no cost."""
        octaves = [bx.Octaves(as_rgb(image)) for image in images]
        if hints is None:
            hints = [None] * len(images)
        if len(hints) != len(images):
            raise ValueError(f"{len(hints)} hints for {len(images)} images")
        full = [i for i, hint in enumerate(hints) if hint is None]
        chosen = [octaves[i] for i in full]
        stages = [_Stage.empty() for _ in images]
        for i, stage in zip(full, self._refine(chosen, self._propose(chosen)), strict=True):
            stages[i] = stage
        for i, hint in enumerate(hints):
            if hint is not None and len(hint):
                boxes = bx.around(np.asarray(hint, np.float32), HINT_SHIFTS, HINT_SCALES)
                stages[i] = _Stage.next(boxes, np.ones(len(boxes), np.float32),
                                        octaves[i].images[0].shape[:2])
        return self._output(octaves, stages)

    def warm_up(self, height: int, width: int) -> None:
        """Run every network at every batch shape a stream of height x width frames can feed
        it. Each new input shape costs TensorFlow/oneDNN a one-off allocation of kernels and
        buffers (~100 MB in all here), so a server that pays it before its first client keeps
        a flat memory profile and a steady first minute. Shapes, not pixels, decide that:
        blank inputs do."""
        for frames in range(1, PNET_BATCH_MAX + 1):
            self._pnet_fn(np.zeros((frames, *self._canvas_shape(height, width), 3), np.uint8))
        for fn, size, (smallest, largest) in (
            (self._rnet_fn, RNET_SIZE, RNET_BATCH),
            (self._onet_fn, ONET_SIZE, ONET_BATCH),
        ):
            for count in bx.bucket_sizes(smallest, largest):
                fn(np.zeros((count, size, size, 3), np.uint8))

    def _canvas_shape(self, height: int, width: int) -> tuple[int, int]:
        layout = self._layout(height, width)
        return layout.canvas_shape if layout is not None else (height, width)

    # Stage 1: P-Net over the tiled pyramid.

    def _layout(self, height: int, width: int) -> bx.CanvasLayout | None:
        return _canvas_layout(height, width, self.min_face_size, self.factor)

    def _propose(self, octaves: list[bx.Octaves]) -> list[_Stage]:
        stages = [_Stage.empty() for _ in octaves]
        layouts = [self._layout(*o.images[0].shape[:2]) for o in octaves]
        groups: dict[tuple[int, int], list[int]] = {}
        laid: dict[int, bx.CanvasLayout] = {}
        for i, layout in enumerate(layouts):
            if layout is not None:
                groups.setdefault(layout.canvas_shape, []).append(i)
                laid[i] = layout
        for canvas_shape, members in groups.items():
            for start in range(0, len(members), PNET_BATCH_MAX):
                chunk = members[start : start + PNET_BATCH_MAX]
                batch = np.zeros((len(chunk), *canvas_shape, 3), np.uint8)
                for slot, i in enumerate(chunk):
                    bx.fill_canvas(octaves[i], laid[i], out=batch[slot])
                prob, reg = (t.numpy() for t in self._pnet_fn(batch))
                for slot, i in enumerate(chunk):
                    stages[i] = self._pnet_boxes(prob[slot], reg[slot], laid[i])
        return stages

    def _pnet_boxes(self, prob: np.ndarray, reg: np.ndarray, layout: bx.CanvasLayout) -> _Stage:
        boxes, scores, offsets, level = bx.pnet_candidates(prob, reg, layout, self.thresholds[0])
        keep = bx.nms_per_group(boxes, scores, level, NMS_LEVEL)
        boxes, scores, offsets = boxes[keep], scores[keep], offsets[keep]
        keep = bx.nms(boxes, scores, NMS_PNET)
        boxes = bx.apply_regression(boxes[keep], offsets[keep])
        return _Stage.next(boxes, scores[keep], layout.image_shape)

    # Stages 2 and 3: R-Net and O-Net over crops of all images at once.

    def _run_crops(
        self,
        fn: Callable[[np.ndarray], tuple[tf.Tensor, ...]],
        octaves: list[bx.Octaves],
        stages: list[_Stage],
        size: int,
        batch: tuple[int, int],
    ) -> list[tuple[np.ndarray, ...]]:
        """Crop every image's candidates to size x size and run `fn` on them, all images
        together, in padded batches. Replaces each stage's boxes by the exact boxes cropped
        and returns, per image, fn's outputs (numpy) for its candidates."""
        total = sum(len(st.boxes) for st in stages)
        patches = np.zeros((total, size, size, 3), np.uint8)
        start = 0
        for o, st in zip(octaves, stages, strict=True):
            n = len(st.boxes)
            if n:
                st.boxes = bx.crop_patches(o, st.boxes, size, patches[start : start + n])
            start += n
        parts: list[list[np.ndarray]] = []
        for first in range(0, total, batch[1]):
            chunk = patches[first : first + batch[1]]
            padded = np.zeros((bx.batch_bucket(len(chunk), *batch), size, size, 3), np.uint8)
            padded[: len(chunk)] = chunk
            parts.append([t.numpy()[: len(chunk)] for t in fn(padded)])
        if not parts:
            return [() for _ in stages]
        merged = [np.concatenate(outs) for outs in zip(*parts, strict=True)]
        per_image, start = [], 0
        for st in stages:
            per_image.append(tuple(m[start : start + len(st.boxes)] for m in merged))
            start += len(st.boxes)
        return per_image

    def _refine(self, octaves: list[bx.Octaves], stages: list[_Stage]) -> list[_Stage]:
        results = self._run_crops(self._rnet_fn, octaves, stages, RNET_SIZE, RNET_BATCH)
        refined = []
        for o, st, out in zip(octaves, stages, results, strict=True):
            if not len(st.boxes):
                refined.append(st)
                continue
            prob, reg = out
            hit = prob >= self.thresholds[1]
            boxes, scores, reg = st.boxes[hit], prob[hit], reg[hit]
            keep = bx.nms(boxes, scores, NMS_RNET)
            boxes = bx.apply_regression(boxes[keep], reg[keep])
            refined.append(_Stage.next(boxes, scores[keep], o.images[0].shape[:2]))
        return refined

    def _output(self, octaves: list[bx.Octaves], stages: list[_Stage]) -> list[list[Detection]]:
        results = self._run_crops(self._onet_fn, octaves, stages, ONET_SIZE, ONET_BATCH)
        found: list[list[Detection]] = []
        for st, out in zip(stages, results, strict=True):
            if not len(st.boxes):
                found.append([])
                continue
            prob, reg, points = out
            hit = prob >= self.thresholds[2]
            boxes, scores = st.boxes[hit], prob[hit]
            landmarks = bx.landmarks_from_offsets(boxes, points[hit])
            boxes = bx.apply_regression(boxes, reg[hit])
            keep = bx.nms(boxes, scores, NMS_ONET, mode="min")
            found.append(
                [Detection(boxes[k].copy(), float(scores[k]), landmarks[k].copy()) for k in keep]
            )
        return found
