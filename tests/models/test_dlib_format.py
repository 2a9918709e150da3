"""Our reader of dlib's .dat serialisation: the real face-recognition ResNet parses to the
expected layers, and anything else is refused quickly with a ValueError that says why."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from facelive.models.dlib_format import DlibFormatError, read_dlib_resnet
from facelive.models.dlib_layers import (
    AddPrevLayer,
    AffineLayer,
    FcLayer,
    PoolLayer,
    ReluLayer,
    SkipLayer,
    TagLayer,
)
from facelive.models.dlib_serialize import _Reader


@pytest.fixture(scope="module")
def dat_bytes(dat_path: Path) -> bytes:
    return dat_path.read_bytes()


@pytest.fixture(scope="module")
def weights(dat_path: Path):
    return read_dlib_resnet(dat_path)


# --- primitives, on byte strings copied from the real file ----------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"\x01\x00", 0),
        (b"\x01\x02", 2),
        (b"\x02\x80\x12", 0x1280),  # the first conv's params count, 4736
        (b"\x81\x11", -17),
    ],
)
def test_integer_encoding(raw: bytes, value: int) -> None:
    r = _Reader(raw)
    assert r.int64("x") == value
    assert r.remaining == 0


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"\x03b\x90\xf5\x81\x11", np.float32(122.782)),  # avg_red of the input layer
        (b"\x01\x10\x81\x04", 1.0),  # a learning-rate multiplier (a double)
        (b"\x01\x00\x01\x0b", 0.0),  # 0 keeps frexp's exponent, shifted by 64 bits
        (b"\x01\x00\x02\x00\x7d", np.inf),  # exponent 32000 is +inf
    ],
)
def test_float_encoding(raw: bytes, value: float) -> None:
    r = _Reader(raw)
    got = r.real("x")
    assert np.float32(got) == np.float32(value)
    assert r.remaining == 0


def test_unsigned_refuses_negative_flag() -> None:
    with pytest.raises(DlibFormatError, match="control byte"):
        _Reader(b"\x81\x05").uint64("a size")


# --- the real file ----------------------------------------------------------------------


def test_real_file_layer_counts(weights) -> None:
    kinds = Counter(type(layer).__name__ for layer in weights.layers)
    assert kinds == {
        "ConvLayer": 29,
        "AffineLayer": 29,
        "ReluLayer": 29,
        "AddPrevLayer": 14,
        "TagLayer": 18,  # tag1 in each of the 14 residual blocks, tag2 in the 4 down blocks
        "SkipLayer": 4,
        "PoolLayer": 6,  # max 3x3, four avg 2x2 shortcuts, the global average
        "FcLayer": 1,
    }
    assert len(weights.convs) == 29 and len(weights.affines) == 29


def test_real_file_shapes(weights) -> None:
    first = weights.convs[0]
    assert first.weight.shape == (7, 7, 3, 32)
    assert first.stride == (2, 2) and first.padding == (0, 0)
    assert isinstance(weights.layers[1], AffineLayer) and isinstance(weights.layers[2], ReluLayer)
    assert weights.layers[3] == PoolLayer("max", (3, 3), (2, 2), (0, 0))

    widths = Counter(conv.num_filters for conv in weights.convs)
    assert widths == {32: 7, 64: 8, 128: 6, 256: 8}
    for conv in weights.convs[1:]:
        assert conv.kernel == (3, 3)
        # dlib's default padding: none when strided, else k//2.
        assert conv.padding == ((0, 0) if conv.stride == (2, 2) else (1, 1))
        assert conv.bias.shape == (conv.num_filters,)
    assert sum(conv.stride == (2, 2) for conv in weights.convs) == 5
    for conv, affine in zip(weights.convs, weights.affines, strict=True):
        assert affine.gamma.shape == affine.beta.shape == (conv.num_filters,)
        assert affine.gamma.dtype == np.float32

    # A down block: tag1, strided conv ... tag2, skip1, 2x2 avg pool, add_prev2, relu.
    down = next(i for i, layer in enumerate(weights.layers) if isinstance(layer, SkipLayer))
    assert weights.layers[down - 1] == TagLayer(2)
    assert weights.layers[down] == SkipLayer(1)
    assert weights.layers[down + 1] == PoolLayer("avg", (2, 2), (2, 2), (0, 0))
    assert weights.layers[down + 2] == AddPrevLayer(2)

    assert weights.layers[-2] == PoolLayer("avg", (0, 0), (1, 1), (0, 0))
    assert isinstance(weights.layers[-1], FcLayer)
    assert weights.fc.weight.shape == (256, 128)
    assert weights.descriptor_size == 128


def test_real_file_input_and_loss(weights) -> None:
    np.testing.assert_allclose(weights.input_mean, [122.782, 117.001, 104.298], atol=1e-4)
    assert weights.input_scale == 1 / 256
    assert weights.input_size == (150, 150)
    assert weights.loss_margin == pytest.approx(0.04)
    assert weights.loss_dist_thresh == pytest.approx(0.6)


def test_real_weights_look_trained(weights) -> None:
    """Not zeros, not garbage: conv kernels small and varied, gammas mostly positive."""
    for conv in weights.convs:
        assert np.isfinite(conv.weight).all()
        assert 1e-4 < conv.weight.std() < 1.0
    assert np.mean([np.mean(a.gamma > 0) for a in weights.affines]) > 0.8
    assert np.abs(weights.fc.weight).max() < 10


# --- bad input ----------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _refused(path: Path, match: str) -> None:
    start = time.monotonic()
    with pytest.raises(ValueError, match=match) as info:
        read_dlib_resnet(path)
    assert time.monotonic() - start < 5, "refusing a bad file must be fast"
    assert str(path) in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    _refused(_write(tmp_path, "empty.dat", b""), "empty file")


@pytest.mark.parametrize(
    "keep",
    [
        1,  # inside the loss header
        30,  # among the layer headers
        500,  # inside the first conv's params tensor
        12_000_000,  # somewhere in the middle
        -1,  # only the last byte missing
    ],
)
def test_truncated_copy(tmp_path: Path, dat_bytes: bytes, keep: int) -> None:
    _refused(_write(tmp_path, "cut.dat", dat_bytes[:keep]), "file ends inside")


def test_trailing_garbage(tmp_path: Path, dat_bytes: bytes) -> None:
    _refused(_write(tmp_path, "long.dat", dat_bytes + b"\x00"), "unexpected bytes after")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    data = np.random.default_rng(seed).bytes(1 << 20)
    _refused(_write(tmp_path, "random.dat", data), "not a valid dlib")


def test_real_header_then_random_bytes(tmp_path: Path, dat_bytes: bytes) -> None:
    data = dat_bytes[:400] + np.random.default_rng(3).bytes(len(dat_bytes) - 400)
    _refused(_write(tmp_path, "half.dat", data), "not a valid dlib")


def test_huge_tensor_size_is_not_allocated(tmp_path: Path, dat_bytes: bytes) -> None:
    """The first conv's params tensor claims 2**56 floats: refused before allocating."""
    at = dat_bytes.index(b"con_4") + len(b"con_4")
    assert dat_bytes[at : at + 5] == b"\x01\x02\x02\x80\x12"  # version 2, num_samples 4736
    data = dat_bytes[:at] + b"\x01\x02\x08" + b"\xff" * 7 + b"\x00" + dat_bytes[at + 5 :]
    _refused(_write(tmp_path, "huge.dat", data), "needs .* bytes")


def test_endless_nesting_is_bounded(tmp_path: Path, dat_bytes: bytes) -> None:
    data = dat_bytes[:24] + b"\x01\x01" * 200_000
    _refused(_write(tmp_path, "deep.dat", data), "nests more than")


def test_unknown_layer_named(tmp_path: Path, dat_bytes: bytes) -> None:
    data = dat_bytes.replace(b"relu_", b"relu?", 1)
    _refused(_write(tmp_path, "odd.dat", data), "unsupported dlib layer 'relu\\?'")


def test_other_network_refused(tmp_path: Path, dat_bytes: bytes) -> None:
    """Same format, different architecture: the first conv's stride 2 changed to 1."""
    at = dat_bytes.index(b"con_4")
    # after params: num_filters 32, nr 7, nc 7, then stride_y 2, stride_x 2
    marker = b"\x01\x20\x01\x07\x01\x07\x01\x02\x01\x02"
    pos = dat_bytes.index(marker, at)
    data = dat_bytes[:pos] + b"\x01\x20\x01\x07\x01\x07\x01\x01\x01\x01" + dat_bytes[pos + 10 :]
    _refused(_write(tmp_path, "stride.dat", data), "layer 0 \\(expected con\\)")


def test_dlibformaterror_is_valueerror() -> None:
    assert issubclass(DlibFormatError, ValueError)
