"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1`) in TensorFlow.

Built from the weights our own reader pulls out of dlib's .dat file
(facelive.models.dlib_format); dlib itself is never imported. Input: 150x150 RGB face chips
aligned the way `dlib.get_face_chip(img, shape, size=150, padding=0.25)` makes them, as
float32 0..255. Output: dlib's raw 128-D descriptor (not normalised).

Semantics carried over from dlib's layers:
* input: (pixel - mean[c]) / 256 per RGB channel;
* con_: cross-correlation, padding k//2 at stride 1 and none when strided;
* max_pool_/avg_pool_: no padding for strided windows, so windows lie wholly inside;
* add_prev_: operands of different shapes are zero-extended at the end of each axis to the
  larger size (the downsampling shortcut is a 2x2 average pool with fewer channels and, at
  odd sizes, one more row/column than the strided conv path);
* avg_pool_everything + fc_ without bias as the head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from facelive.models.dlib_format import read_dlib_resnet
from facelive.models.dlib_layers import (
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    DlibResNetWeights,
    FcLayer,
    PoolLayer,
    ReluLayer,
    SkipLayer,
    TagLayer,
)
from facelive.vision.graph_function import graph_function

CHIP_SIZE = 150


@dataclass(frozen=True)
class _Conv:
    kernel: tf.Variable  # (kh, kw, in, out)
    bias: tf.Variable  # (out,)
    stride: tuple[int, int]
    padding: str | list[list[int]]
    relu: bool


@dataclass(frozen=True)
class _Step:
    """A parameter-free step: relu, max/avg pool, global average, tag, skip or add_prev."""

    op: str
    window: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    tag: int = 0


def _tf_padding(layer: ConvLayer) -> str | list[list[int]]:
    """dlib pads symmetrically by `padding` pixels; name it "VALID"/"SAME" where that is the
    same thing, because TF's CPU kernels take those fast paths."""
    (kh, kw), (sy, sx), (py, px) = layer.kernel, layer.stride, layer.padding
    if py == 0 and px == 0:
        return "VALID"
    if (sy, sx) == (1, 1) and kh % 2 == 1 and kw % 2 == 1 and (py, px) == (kh // 2, kw // 2):
        return "SAME"
    return [[0, 0], [py, py], [px, px], [0, 0]]


def _fold_affine(conv: ConvLayer, affine: AffineLayer | None) -> tuple[np.ndarray, np.ndarray]:
    """Kernel (kh, kw, in, out) and bias (out,) of conv followed by affine, as one conv.

    affine(conv(x)) = gamma * (W*x + b) + beta = (gamma*W)*x + (gamma*b + beta): folding
    saves a full pass over every activation map (the affine is per output channel, so it
    commutes into the kernel exactly up to float rounding). Done in float64 so the folded
    weights are the correctly rounded float32 of the product."""
    kernel = conv.weight.astype(np.float64)
    bias = conv.bias.astype(np.float64)
    if affine is not None:
        gamma = affine.gamma.astype(np.float64)
        kernel = kernel * gamma
        bias = bias * gamma + affine.beta.astype(np.float64)
    return kernel.astype(np.float32), bias.astype(np.float32)


def _compile(weights: DlibResNetWeights) -> tuple[list[_Conv | _Step], tf.Variable]:
    """Turn the parsed layers into TF steps (affines folded, relus attached to the conv they
    follow); returns the steps and the fc matrix (in, out)."""
    layers = list(weights.layers)
    steps: list[_Conv | _Step] = []
    fc: tf.Variable | None = None
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, ConvLayer):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            affine = nxt if isinstance(nxt, AffineLayer) else None
            i += 1 if affine is None else 2
            relu = layer.fused_relu
            if not relu and i < len(layers) and isinstance(layers[i], ReluLayer):
                relu, i = True, i + 1
            kernel, bias = _fold_affine(layer, affine)
            n = len(steps)
            steps.append(
                _Conv(
                    tf.Variable(kernel, trainable=False, name=f"conv{n}_kernel"),
                    tf.Variable(bias, trainable=False, name=f"conv{n}_bias"),
                    layer.stride,
                    _tf_padding(layer),
                    relu,
                )
            )
            continue
        if isinstance(layer, AffineLayer):
            raise ValueError(f"layer {i}: an affine that does not follow a conv")
        if isinstance(layer, ReluLayer):
            steps.append(_Step("relu"))
        elif isinstance(layer, PoolLayer):
            if layer.padding != (0, 0):
                raise ValueError(f"layer {i}: padded pooling is not supported")
            op = "global_avg" if layer.window == (0, 0) else f"{layer.op}_pool"
            if op == "global_avg" and layer.op != "avg":
                raise ValueError(f"layer {i}: max_pool_everything is not supported")
            steps.append(_Step(op, layer.window, layer.stride))
        elif isinstance(layer, TagLayer):
            steps.append(_Step("tag", tag=layer.tag))
        elif isinstance(layer, SkipLayer):
            steps.append(_Step("skip", tag=layer.tag))
        elif isinstance(layer, AddPrevLayer):
            steps.append(_Step("add_prev", tag=layer.tag))
        elif isinstance(layer, FcLayer):
            if i != len(layers) - 1:
                raise ValueError(f"layer {i}: fc must be the last layer")
            fc = tf.Variable(layer.weight, trainable=False, name="fc_weight")
        i += 1
    if fc is None:
        raise ValueError("the network has no fc layer")
    return steps, fc


def _add_zero_extended(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """dlib's add of NHWC tensors whose H, W or C differ: the result takes the larger size on
    each axis and whatever is missing from an operand counts as zero. Shapes are static
    (fixed 150x150 input), so the padding is decided at trace time."""
    a_shape, b_shape = a.shape.as_list()[1:], b.shape.as_list()[1:]
    target = [max(x, y) for x, y in zip(a_shape, b_shape, strict=True)]

    def extend(t: tf.Tensor, shape: list[int]) -> tf.Tensor:
        if shape == target:
            return t
        return tf.pad(
            t, [[0, 0]] + [[0, want - have] for have, want in zip(shape, target, strict=True)]
        )

    return extend(a, a_shape) + extend(b, b_shape)


class DlibResNet(tf.Module):
    """dlib's 29-conv ResNet face descriptor.

    Call with chips (N, 150, 150, 3) float32 RGB in 0..255; returns (N, 128) float32, the raw
    descriptor exactly as dlib computes it (the caller L2-normalises).
    """

    def __init__(self, weights: DlibResNetWeights, name: str | None = None) -> None:
        super().__init__(name=name)
        if weights.input_size != (CHIP_SIZE, CHIP_SIZE):
            raise ValueError(f"expected a {CHIP_SIZE}x{CHIP_SIZE} input, got {weights.input_size}")
        self.descriptor_size = weights.descriptor_size
        self._mean = tf.constant(weights.input_mean.reshape(1, 1, 1, 3), tf.float32)
        self._scale = float(weights.input_scale)
        self._steps, self._fc = _compile(weights)
        # tf.Module finds variables through attributes, lists and dicts, not inside the
        # step dataclasses; this list makes them visible (`.variables`, checkpoints).
        self._conv_variables = [
            v for s in self._steps if isinstance(s, _Conv) for v in (s.kernel, s.bias)
        ]

    @graph_function([tf.TensorSpec([None, CHIP_SIZE, CHIP_SIZE, 3], tf.float32)])
    def __call__(self, chips: tf.Tensor) -> tf.Tensor:
        # Same arithmetic as dlib's input layer: float subtract, then an exact /256.
        x = (chips - self._mean) * self._scale
        tagged: dict[int, tf.Tensor] = {}
        for step in self._steps:
            x = self._apply(step, x, tagged)
        return tf.matmul(x, self._fc)

    @staticmethod
    def _apply(step: _Conv | _Step, x: tf.Tensor, tagged: dict[int, tf.Tensor]) -> tf.Tensor:
        """One step on NHWC activations (unrolled at trace time)."""
        if isinstance(step, _Conv):
            x = tf.nn.conv2d(x, step.kernel, (1, *step.stride, 1), step.padding)
            x = tf.nn.bias_add(x, step.bias)
            return tf.nn.relu(x) if step.relu else x
        if step.op == "relu":
            return tf.nn.relu(x)
        if step.op == "max_pool":
            return tf.nn.max_pool2d(x, step.window, step.stride, "VALID")
        if step.op == "avg_pool":
            return tf.nn.avg_pool2d(x, step.window, step.stride, "VALID")
        if step.op == "global_avg":
            return tf.reduce_mean(x, axis=[1, 2])
        if step.op == "tag":
            tagged[step.tag] = x
            return x
        if step.op == "skip":
            return tagged[step.tag]
        if step.op == "add_prev":
            return _add_zero_extended(x, tagged[step.tag])
        raise AssertionError(step.op)


def load_dlib_resnet(path: Path) -> DlibResNet:
    """Read `dlib_face_recognition_resnet_model_v1.dat` and build the TF model.
    Raises ValueError (DlibFormatError) for a file that is not that model."""
    return DlibResNet(read_dlib_resnet(Path(path)))
