"""The dlib face-recognition ResNet as FaceLive holds it once read: one frozen dataclass per
layer kind, in forward order, and the whole network with its input normalisation
(dlib_serialize.py reads them from the .dat file, dlib_architecture.py checks them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelive.errors import FaceLiveError

INPUT_SIZE = 150
DESCRIPTOR_SIZE = 128
# input_rgb_image_sized divides (pixel - mean) by 256.
INPUT_SCALE = 1.0 / 256.0


class DlibFormatError(FaceLiveError, ValueError):
    """The file is not (a readable copy of) dlib's face-recognition ResNet."""

    kind = "broken"



# ---------------------------------------------------------------------------------------------
# The parsed network, in forward order


@dataclass(frozen=True)
class ConvLayer:
    """dlib `con_`: weight (kh, kw, in, out) float32 (TF's HWIO, converted from dlib's
    (out, in, kh, kw)), bias (out,) float32; stride and padding in pixels as (y, x)."""

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    fused_relu: bool = False

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weight.shape[0]), int(self.weight.shape[1])

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[2])

    @property
    def num_filters(self) -> int:
        return int(self.weight.shape[3])


@dataclass(frozen=True)
class AffineLayer:
    """dlib `affine_` in conv mode: y = gamma[c] * x + beta[c]; gamma, beta (C,) float32.
    (It is the inference form of batch norm.)"""

    gamma: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True)
class ReluLayer:
    """dlib `relu_`: max(x, 0)."""


@dataclass(frozen=True)
class PoolLayer:
    """dlib `max_pool_` / `avg_pool_`. window (0, 0) means the whole plane
    (`*_pool_everything`); stride and padding in pixels as (y, x)."""

    op: str  # "max" or "avg"
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class TagLayer:
    """dlib `tagN`: remembers the tensor passing through under id N."""

    tag: int


@dataclass(frozen=True)
class SkipLayer:
    """dlib `skipN`: replaces the current tensor by the one tagged N."""

    tag: int


@dataclass(frozen=True)
class AddPrevLayer:
    """dlib `add_prevN`: current + tagged N. When shapes differ the output takes the larger
    size on each axis and entries missing from either operand count as zero."""

    tag: int


@dataclass(frozen=True)
class FcLayer:
    """dlib `fc_` without bias: out = x_flat @ weight, weight (num_inputs, num_outputs)."""

    weight: np.ndarray


Layer = (
    ConvLayer | AffineLayer | ReluLayer | PoolLayer | TagLayer | SkipLayer | AddPrevLayer | FcLayer
)


@dataclass(frozen=True)
class DlibResNetWeights:
    """The face-recognition ResNet as read from the .dat file.

    layers: every layer in forward order (input to descriptor), tag/skip/add_prev ids filled
    in from the expected structure. input_mean: (3,) float32 per-channel mean in RGB order,
    subtracted from 0..255 pixels before multiplying by input_scale. The convenience tuples
    (convs, affines) list the same objects as `layers`, in the same order.
    """

    layers: tuple[Layer, ...]
    input_mean: np.ndarray
    input_scale: float
    input_size: tuple[int, int]
    loss_margin: float
    loss_dist_thresh: float

    @property
    def convs(self) -> tuple[ConvLayer, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, ConvLayer))

    @property
    def affines(self) -> tuple[AffineLayer, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, AffineLayer))

    @property
    def fc(self) -> FcLayer:
        return next(layer for layer in self.layers if isinstance(layer, FcLayer))

    @property
    def descriptor_size(self) -> int:
        return int(self.fc.weight.shape[1])
