"""Inception-ResNet-v1 (Szegedy et al. 2016, as in davidsandberg/facenet) in TensorFlow.

The network, top to bottom (input 160x160x3, the shapes for that input):

| stage | what | output |
|---|---|---|
| stem | 3x3/2 32 V, 3x3 32 V, 3x3 64, pool, 1x1 80 V, 3x3 192 V, 3x3/2 256 V | 17x17x256 |
| 5 x Block35 | 1x1 32 / 1x1, 3x3 32 / 1x1, 3x3, 3x3 32 -> 1x1 256, x 0.17, relu | 17x17x256 |
| Reduction-A | 3x3/2 384 V / 1x1 192, 3x3 192, 3x3/2 256 V / pool | 8x8x896 |
| 10 x Block17 | 1x1 128 / 1x1 128, 1x7 128, 7x1 128 -> 1x1 896, x 0.10, relu | 8x8x896 |
| Reduction-B | 1x1, 3x3/2 384 V / 1x1, 3x3/2 256 V / 1x1, 3x3, 3x3/2 256 V / pool | 3x3x1792 |
| 5 x Block8 | 1x1 192 / 1x1 192, 1x3 192, 3x1 192 -> 1x1 1792, x 0.20, relu | 3x3x1792 |
| Block8 | the same, x 1.0, no relu | 3x3x1792 |
| head | average pool, bottleneck (fully connected, no bias), batch norm | D (128 or 512) |

(V: valid padding, else same; "/": parallel branches, concatenated; pool: max 3x3/2 V;
Reduction-B's 1x1s: 256.) Every convolution but a
block's last 1x1 is followed by batch norm without gamma (slim's default `scale=False`) and a
relu; the block's last 1x1 has a bias and neither. Batch norm is folded into the convolution
at load time (inference only). The output is the bottleneck's batch norm, NOT normalised:
callers L2-normalise it.

Weights are named as facenet's TF-slim scopes without the `InceptionResnetV1/` prefix (e.g.
`Repeat/block35_1/Branch_2/Conv2d_0b_3x3`); `facelive.vision.facenet_weights` reads them from
the Keras .h5 conversion, a TF checkpoint or a frozen graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

IMAGE_SIZE = 160
BN_EPSILON = 1e-3


@dataclass(frozen=True)
class Unit:
    """One convolution (or the bottleneck) as stored: kernel (kh, kw, in, out) or (in, out);
    bias (out,) for a block's last 1x1; batch norm (beta, moving_mean, moving_variance)."""

    kernel: np.ndarray
    bias: np.ndarray | None = None
    batch_norm: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


# name -> (kh, kw, in channels, out channels, has batch norm): the table above, one row per
# convolution.
def _layer_table() -> dict[str, tuple[int, int, int, int, bool]]:
    table: dict[str, tuple[int, int, int, int, bool]] = {}

    def conv(name: str, kh: int, kw: int, cin: int, out: int, bn: bool = True) -> None:
        table[name] = (kh, kw, cin, out, bn)

    for name, k, cin, out in (
        ("Conv2d_1a_3x3", 3, 3, 32),
        ("Conv2d_2a_3x3", 3, 32, 32),
        ("Conv2d_2b_3x3", 3, 32, 64),
        ("Conv2d_3b_1x1", 1, 64, 80),
        ("Conv2d_4a_3x3", 3, 80, 192),
        ("Conv2d_4b_3x3", 3, 192, 256),
    ):
        conv(name, k, k, cin, out)
    for i in range(1, 6):
        p = f"Repeat/block35_{i}"
        conv(f"{p}/Branch_0/Conv2d_1x1", 1, 1, 256, 32)
        conv(f"{p}/Branch_1/Conv2d_0a_1x1", 1, 1, 256, 32)
        conv(f"{p}/Branch_1/Conv2d_0b_3x3", 3, 3, 32, 32)
        conv(f"{p}/Branch_2/Conv2d_0a_1x1", 1, 1, 256, 32)
        conv(f"{p}/Branch_2/Conv2d_0b_3x3", 3, 3, 32, 32)
        conv(f"{p}/Branch_2/Conv2d_0c_3x3", 3, 3, 32, 32)
        conv(f"{p}/Conv2d_1x1", 1, 1, 96, 256, bn=False)
    conv("Mixed_6a/Branch_0/Conv2d_1a_3x3", 3, 3, 256, 384)
    conv("Mixed_6a/Branch_1/Conv2d_0a_1x1", 1, 1, 256, 192)
    conv("Mixed_6a/Branch_1/Conv2d_0b_3x3", 3, 3, 192, 192)
    conv("Mixed_6a/Branch_1/Conv2d_1a_3x3", 3, 3, 192, 256)
    for i in range(1, 11):
        p = f"Repeat_1/block17_{i}"
        conv(f"{p}/Branch_0/Conv2d_1x1", 1, 1, 896, 128)
        conv(f"{p}/Branch_1/Conv2d_0a_1x1", 1, 1, 896, 128)
        conv(f"{p}/Branch_1/Conv2d_0b_1x7", 1, 7, 128, 128)
        conv(f"{p}/Branch_1/Conv2d_0c_7x1", 7, 1, 128, 128)
        conv(f"{p}/Conv2d_1x1", 1, 1, 256, 896, bn=False)
    for b, last in ((0, 384), (1, 256), (2, 256)):
        conv(f"Mixed_7a/Branch_{b}/Conv2d_0a_1x1", 1, 1, 896, 256)
        if b == 2:
            conv("Mixed_7a/Branch_2/Conv2d_0b_3x3", 3, 3, 256, 256)
        conv(f"Mixed_7a/Branch_{b}/Conv2d_1a_3x3", 3, 3, 256, last)
    for p in [f"Repeat_2/block8_{i}" for i in range(1, 6)] + ["Block8"]:
        conv(f"{p}/Branch_0/Conv2d_1x1", 1, 1, 1792, 192)
        conv(f"{p}/Branch_1/Conv2d_0a_1x1", 1, 1, 1792, 192)
        conv(f"{p}/Branch_1/Conv2d_0b_1x3", 1, 3, 192, 192)
        conv(f"{p}/Branch_1/Conv2d_0c_3x1", 3, 1, 192, 192)
        conv(f"{p}/Conv2d_1x1", 1, 1, 384, 1792, bn=False)
    return table


LAYERS: dict[str, tuple[int, int, int, int, bool]] = _layer_table()
BOTTLENECK_IN = 1792
BOTTLENECK = "Bottleneck"
UNIT_NAMES: tuple[str, ...] = (*LAYERS, BOTTLENECK)


def _fold(unit: Unit) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of `unit` with its batch norm folded in (float64, then float32):
    bn(W*x) = (W*x - mean) / sqrt(var + eps) + beta, there being no gamma."""
    kernel = unit.kernel.astype(np.float64)
    bias = (
        np.zeros(kernel.shape[-1]) if unit.bias is None else unit.bias.astype(np.float64)
    )
    if unit.batch_norm is not None:
        beta, mean, variance = (a.astype(np.float64) for a in unit.batch_norm)
        scale = 1.0 / np.sqrt(variance + BN_EPSILON)
        kernel = kernel * scale
        bias = (bias - mean) * scale + beta
    return kernel.astype(np.float32), bias.astype(np.float32)


class InceptionResNetV1(tf.Module):
    """(N, 160, 160, 3) float32 standardised images -> (N, D) float32 raw embeddings."""

    def __init__(self, units: Mapping[str, Unit]) -> None:
        super().__init__(name="inception_resnet_v1")
        check_units(units)
        self._kernels: dict[str, tf.Variable] = {}
        self._biases: dict[str, tf.Variable] = {}
        for name in UNIT_NAMES:
            kernel, bias = _fold(units[name])
            self._kernels[name] = tf.Variable(kernel, trainable=False)
            self._biases[name] = tf.Variable(bias, trainable=False)
        self.dim = int(units[BOTTLENECK].kernel.shape[-1])

    # ---------------------------------------------------------------- building blocks

    def _conv(self, x: tf.Tensor, name: str, stride: int = 1, padding: str = "SAME",
              relu: bool = True) -> tf.Tensor:
        y = tf.nn.conv2d(x, self._kernels[name], stride, padding) + self._biases[name]
        return tf.nn.relu(y) if relu else y

    def _chain(self, x: tf.Tensor, prefix: str, *names: str) -> tf.Tensor:
        """A branch of stride-1 same-padded convolutions, in order."""
        for name in names:
            x = self._conv(x, f"{prefix}/{name}")
        return x

    @staticmethod
    def _max_pool(x: tf.Tensor) -> tf.Tensor:
        return tf.nn.max_pool2d(x, 3, 2, "VALID")

    def _residual(self, x: tf.Tensor, prefix: str, branches: list[tf.Tensor], scale: float,
                  relu: bool = True) -> tf.Tensor:
        mixed = tf.concat(branches, axis=3)
        up = self._conv(mixed, f"{prefix}/Conv2d_1x1", relu=False)
        x = x + scale * up
        return tf.nn.relu(x) if relu else x

    def _stem(self, x: tf.Tensor) -> tf.Tensor:
        x = self._conv(x, "Conv2d_1a_3x3", 2, "VALID")
        x = self._conv(x, "Conv2d_2a_3x3", 1, "VALID")
        x = self._conv(x, "Conv2d_2b_3x3")
        x = self._max_pool(x)
        x = self._conv(x, "Conv2d_3b_1x1", 1, "VALID")
        x = self._conv(x, "Conv2d_4a_3x3", 1, "VALID")
        return self._conv(x, "Conv2d_4b_3x3", 2, "VALID")

    def _block35(self, x: tf.Tensor, p: str, scale: float) -> tf.Tensor:
        b0 = self._conv(x, f"{p}/Branch_0/Conv2d_1x1")
        b1 = self._chain(x, p, "Branch_1/Conv2d_0a_1x1", "Branch_1/Conv2d_0b_3x3")
        b2 = self._conv(x, f"{p}/Branch_2/Conv2d_0a_1x1")
        b2 = self._chain(b2, p, "Branch_2/Conv2d_0b_3x3", "Branch_2/Conv2d_0c_3x3")
        return self._residual(x, p, [b0, b1, b2], scale)

    def _reduction_a(self, x: tf.Tensor) -> tf.Tensor:
        p = "Mixed_6a"
        b0 = self._conv(x, f"{p}/Branch_0/Conv2d_1a_3x3", 2, "VALID")
        b1 = self._chain(x, p, "Branch_1/Conv2d_0a_1x1", "Branch_1/Conv2d_0b_3x3")
        b1 = self._conv(b1, f"{p}/Branch_1/Conv2d_1a_3x3", 2, "VALID")
        return tf.concat([b0, b1, self._max_pool(x)], axis=3)

    def _block17(self, x: tf.Tensor, p: str, scale: float) -> tf.Tensor:
        b0 = self._conv(x, f"{p}/Branch_0/Conv2d_1x1")
        b1 = self._conv(x, f"{p}/Branch_1/Conv2d_0a_1x1")
        b1 = self._chain(b1, p, "Branch_1/Conv2d_0b_1x7", "Branch_1/Conv2d_0c_7x1")
        return self._residual(x, p, [b0, b1], scale)

    def _reduction_b(self, x: tf.Tensor) -> tf.Tensor:
        p = "Mixed_7a"
        b0 = self._conv(self._conv(x, f"{p}/Branch_0/Conv2d_0a_1x1"),
                        f"{p}/Branch_0/Conv2d_1a_3x3", 2, "VALID")
        b1 = self._conv(self._conv(x, f"{p}/Branch_1/Conv2d_0a_1x1"),
                        f"{p}/Branch_1/Conv2d_1a_3x3", 2, "VALID")
        b2 = self._chain(x, p, "Branch_2/Conv2d_0a_1x1", "Branch_2/Conv2d_0b_3x3")
        b2 = self._conv(b2, f"{p}/Branch_2/Conv2d_1a_3x3", 2, "VALID")
        return tf.concat([b0, b1, b2, self._max_pool(x)], axis=3)

    def _block8(self, x: tf.Tensor, p: str, scale: float, relu: bool = True) -> tf.Tensor:
        b0 = self._conv(x, f"{p}/Branch_0/Conv2d_1x1")
        b1 = self._conv(x, f"{p}/Branch_1/Conv2d_0a_1x1")
        b1 = self._chain(b1, p, "Branch_1/Conv2d_0b_1x3", "Branch_1/Conv2d_0c_3x1")
        return self._residual(x, p, [b0, b1], scale, relu)

    # ---------------------------------------------------------------- the network

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        x = self._stem(images)
        for i in range(1, 6):
            x = self._block35(x, f"Repeat/block35_{i}", 0.17)
        x = self._reduction_a(x)
        for i in range(1, 11):
            x = self._block17(x, f"Repeat_1/block17_{i}", 0.10)
        x = self._reduction_b(x)
        for i in range(1, 6):
            x = self._block8(x, f"Repeat_2/block8_{i}", 0.20)
        x = self._block8(x, "Block8", 1.0, relu=False)
        x = tf.reduce_mean(x, axis=[1, 2])
        # Dropout is the identity at inference; the bottleneck's batch norm is folded in.
        return tf.matmul(x, self._kernels[BOTTLENECK]) + self._biases[BOTTLENECK]


def check_units(units: Mapping[str, Unit]) -> None:
    """ValueError naming the first missing unit or wrong kernel shape."""
    missing = [n for n in UNIT_NAMES if n not in units]
    if missing:
        raise ValueError(
            f"Inception-ResNet-v1 weights lack {len(missing)} of {len(UNIT_NAMES)} layers, "
            f"e.g. {missing[0]}"
        )
    for name, (kh, kw, _in, _out, bn) in LAYERS.items():
        unit = units[name]
        if unit.kernel.ndim != 4 or unit.kernel.shape[:2] != (kh, kw):
            raise ValueError(f"{name}: kernel {unit.kernel.shape}, expected ({kh}, {kw}, in, out)")
        if bn and unit.batch_norm is None:
            raise ValueError(f"{name}: no batch norm weights")
        if not bn and unit.bias is None:
            raise ValueError(f"{name}: no bias")
    bottleneck = units[BOTTLENECK]
    if bottleneck.kernel.ndim != 2 or bottleneck.batch_norm is None:
        raise ValueError(f"{BOTTLENECK}: expected an (in, D) kernel with batch norm")


def random_units(divisor: int = 16, dim: int = 8, seed: int = 0) -> dict[str, Unit]:
    """Weights of the right structure with every width divided by `divisor` (16 keeps all
    concatenations consistent): for tests of the loaders, never for faces."""
    rng = np.random.default_rng(seed)
    units: dict[str, Unit] = {}
    for name, (kh, kw, cin, out, bn) in LAYERS.items():
        cin = 3 if name == "Conv2d_1a_3x3" else cin // divisor
        shape = (kh, kw, cin, out // divisor)
        kernel = rng.normal(0, 1 / np.sqrt(kh * kw * cin), shape).astype(np.float32)
        units[name] = _random_unit(rng, kernel, bn)
    kernel = rng.normal(0, 0.05, (BOTTLENECK_IN // divisor, dim)).astype(np.float32)
    units[BOTTLENECK] = _random_unit(rng, kernel, True)
    return units


def _random_unit(rng: np.random.Generator, kernel: np.ndarray, bn: bool) -> Unit:
    out = int(kernel.shape[-1])
    if not bn:
        return Unit(kernel, bias=rng.normal(0, 0.1, out).astype(np.float32))
    return Unit(
        kernel,
        batch_norm=(
            rng.normal(0, 0.1, out).astype(np.float32),
            rng.normal(0, 0.1, out).astype(np.float32),
            rng.uniform(0.5, 1.5, out).astype(np.float32),
        ),
    )
