"""Reader for dlib's serialisation of the face-recognition ResNet
(`dlib_face_recognition_resnet_model_v1.dat`), with no dependency on dlib.

The format, as dlib writes it (dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h,
dlib/dnn/{core,layers,input,loss}.h):

* Integers: a control byte, then the magnitude in little-endian bytes. The low 4 bits of the
  control byte are the byte count (1..8, never 0, so 0 itself is `01 00`); bit 0x80 marks a
  negative value (signed types only).
* Floating point numbers ("float_details"): an int64 mantissa then an int16 exponent, both as
  integers above; value = mantissa * 2**exponent. Exponents 32000/32001/32002 mean
  +inf/-inf/NaN.
* Strings: an unsigned length, then the raw bytes. Bools: the ASCII byte '1' or '0'.
* Tensors: int version 2, then num_samples, k, nr, nc, then that many little-endian IEEE
  float32 values (NCHW order). "Alias tensors" (views into a layer's flat `params`) store only
  version 1 and their 4 dimensions.
* A network is a nest of wrappers, written outermost first: the loss layer (version, its
  details, then its subnetwork), then for each `add_layer` its version, its WHOLE subnetwork,
  and only then its own details and some training state. So the file holds all the layer
  headers first (output to input) and then the layer details in forward order (input to
  output). Tag and skip layers write only `version 1` and their subnetwork: their ids are not
  in the file, nor is the tag an `add_prev` refers to; those come from the expected structure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facelive.models import dlib_layers as dl

# The real network nests 130 layers; anything much deeper is not this model.
MAX_DEPTH = 1024
# dlib's type names are short ("input_rgb_image_sized" is the longest we accept).
MAX_NAME_BYTES = 64

# float_details' special exponents.
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002


# ---------------------------------------------------------------------------------------------
# Primitive decoding


class _Reader:
    """A cursor over the file's bytes; every read is bounds-checked before it allocates."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def fail(self, what: str) -> dl.DlibFormatError:
        return dl.DlibFormatError(f"{what} (at byte {self.pos} of {len(self.data)})")

    def take(self, n: int, what: str) -> bytes:
        if n > self.remaining:
            raise self.fail(f"file ends inside {what}: needs {n} bytes, {self.remaining} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self, nbytes: int, signed: bool, what: str) -> int:
        """dlib's variable-length integer for a C++ type of `nbytes` bytes."""
        control = self.take(1, what)[0]
        # Unsigned types keep bit 0x80 in the size, so a "negative" unsigned is an error,
        # as it is in dlib.
        size = control & (0x0F if signed else 0x8F)
        if size == 0 or size > nbytes:
            raise self.fail(f"bad integer control byte 0x{control:02x} for {what}")
        value = int.from_bytes(self.take(size, what), "little")
        if signed:
            if control & 0x80:
                value = -value
            limit = 1 << (8 * nbytes - 1)
            if not -limit <= value < limit:
                raise self.fail(f"integer {value} out of range for {what}")
        return value

    def int32(self, what: str) -> int:
        return self.integer(4, True, what)

    def int64(self, what: str) -> int:
        return self.integer(8, True, what)

    def uint64(self, what: str) -> int:
        return self.integer(8, False, what)

    def boolean(self, what: str) -> bool:
        byte = self.take(1, what)
        if byte not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {byte!r} for {what}")
        return byte == b"1"

    def real(self, what: str) -> float:
        """dlib's float_details: mantissa (int64) * 2**exponent (int16)."""
        mantissa = self.integer(8, True, what)
        exponent = self.integer(2, True, what)
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent >= _EXP_NAN:
            return math.nan
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError:
            return math.copysign(math.inf, mantissa)

    def name(self, what: str) -> str:
        """A short std::string such as a layer's type-and-version tag."""
        length = self.uint64(what)
        if length > MAX_NAME_BYTES:
            raise self.fail(f"{what}: a {length}-byte name where a layer tag was expected")
        raw = self.take(length, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what}: non-ASCII name {raw!r}") from None

    def peek_name(self) -> str | None:
        """The string at the cursor if there is a plausible one, without consuming it."""
        start = self.pos
        try:
            return self.name("lookahead")
        except dl.DlibFormatError:
            return None
        finally:
            self.pos = start

    def dims(self, what: str) -> tuple[int, int, int, int]:
        dims = tuple(self.int64(what) for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"negative dimension {dims} in {what}")
        return dims  # type: ignore[return-value]

    def tensor(self, what: str) -> np.ndarray:
        """A resizable_tensor -> float32 array of shape (num_samples, k, nr, nc)."""
        version = self.int32(what)
        if version != 2:
            raise self.fail(f"{what}: tensor version {version}, expected 2")
        dims = self.dims(what)
        count = math.prod(dims)
        # Check against what is left before allocating, so a corrupt size cannot ask for
        # terabytes.
        if 4 * count > self.remaining:
            raise self.fail(
                f"file ends inside {what}: a tensor of shape {dims} needs {4 * count} bytes, "
                f"{self.remaining} left"
            )
        raw = self.take(4 * count, what)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias_tensor(self, what: str) -> tuple[int, int, int, int]:
        version = self.int32(what)
        if version != 1:
            raise self.fail(f"{what}: alias tensor version {version}, expected 1")
        return self.dims(what)


# ---------------------------------------------------------------------------------------------
# dl.Layer details


def _read_con(r: _Reader, version: str) -> dl.ConvLayer:
    params = r.tensor("con_ params").ravel()
    num_filters = r.int64("con_ num_filters")
    nr, nc = r.int64("con_ nr"), r.int64("con_ nc")
    stride = (r.int32("con_ stride_y"), r.int32("con_ stride_x"))
    padding = (r.int32("con_ padding_y"), r.int32("con_ padding_x"))
    filters = r.alias_tensor("con_ filters")
    biases = r.alias_tensor("con_ biases")
    for what in ("lr mult", "wd mult", "bias lr mult", "bias wd mult"):
        r.real(f"con_ {what}")
    # con_4 predates switchable bias and fused relu: it always has a bias and never a relu.
    use_bias = r.boolean("con_ use_bias") if version in ("con_5", "con_6") else True
    use_relu = r.boolean("con_ use_relu") if version == "con_6" else False

    out, cin, kh, kw = filters
    if out != num_filters or (kh, kw) != (nr, nc) or min(filters) <= 0:
        raise r.fail(f"con_ filters {filters} disagree with {num_filters} filters of {nr}x{nc}")
    if min(stride) <= 0 or not (0 <= padding[0] < kh and 0 <= padding[1] < kw):
        raise r.fail(f"con_ bad stride {stride} or padding {padding} for a {kh}x{kw} kernel")
    n_weights = out * cin * kh * kw
    expected = n_weights + (out if use_bias else 0)
    if params.size != expected:
        raise r.fail(f"con_ has {params.size} params, filters {filters} need {expected}")
    if use_bias and math.prod(biases) != out:
        raise r.fail(f"con_ bias shape {biases} for {out} filters")
    weight = params[:n_weights].reshape(out, cin, kh, kw).transpose(2, 3, 1, 0)
    bias = params[n_weights:] if use_bias else np.zeros(out, np.float32)
    return dl.ConvLayer(np.ascontiguousarray(weight), bias.copy(), stride, padding, use_relu)


def _read_affine(r: _Reader, version: str) -> dl.AffineLayer:
    params = r.tensor("affine_ params").ravel()
    gamma_dims = r.alias_tensor("affine_ gamma")
    beta_dims = r.alias_tensor("affine_ beta")
    mode = r.int32("affine_ mode")
    disabled = r.boolean("affine_ disabled") if version == "affine_2" else False
    if disabled:
        raise r.fail("affine_ is disabled; this model has none")
    size = math.prod(gamma_dims)
    # Conv mode (0) keeps one gamma/beta per channel: shape (1, k, 1, 1).
    if mode != 0 or gamma_dims != beta_dims or gamma_dims[::2] != (1, 1) or gamma_dims[3] != 1:
        raise r.fail(f"affine_ mode {mode} with gamma {gamma_dims}: expected conv mode (1,k,1,1)")
    if params.size != 2 * size:
        raise r.fail(f"affine_ has {params.size} params for gamma {gamma_dims}")
    return dl.AffineLayer(params[:size].copy(), params[size:].copy())


def _read_relu(r: _Reader, version: str) -> dl.ReluLayer:
    if version == "relu_2" and r.boolean("relu_ disabled"):
        raise r.fail("relu_ is disabled; this model has none")
    return dl.ReluLayer()


def _read_pool(r: _Reader, version: str) -> dl.PoolLayer:
    op = "max" if version.startswith("max") else "avg"
    window = (r.int64(f"{op}_pool nr"), r.int64(f"{op}_pool nc"))
    stride = (r.int32(f"{op}_pool stride_y"), r.int32(f"{op}_pool stride_x"))
    padding = (r.int32(f"{op}_pool padding_y"), r.int32(f"{op}_pool padding_x"))
    if min(window) < 0 or min(stride) <= 0 or min(padding) < 0:
        raise r.fail(f"{op}_pool bad window {window}, stride {stride} or padding {padding}")
    return dl.PoolLayer(op, window, stride, padding)


def _read_add_prev(r: _Reader, version: str) -> dl.AddPrevLayer:
    return dl.AddPrevLayer(tag=-1)  # the id is not in the file; filled in by check_structure


def _read_fc(r: _Reader, version: str) -> dl.FcLayer:
    num_outputs = r.uint64("fc_ num_outputs")
    num_inputs = r.uint64("fc_ num_inputs")
    params = r.tensor("fc_ params").ravel()
    weights = r.alias_tensor("fc_ weights")
    r.alias_tensor("fc_ biases")
    bias_mode = r.int32("fc_ bias_mode")
    for what in ("lr mult", "wd mult", "bias lr mult", "bias wd mult"):
        r.real(f"fc_ {what}")
    use_bias = r.boolean("fc_ use_bias") if version == "fc_3" else True
    if bias_mode != 1 and use_bias:  # 1 = FC_NO_BIAS
        raise r.fail("fc_ with a bias; this model's fc has none")
    if weights[:2] != (num_inputs, num_outputs) or params.size != num_inputs * num_outputs:
        raise r.fail(
            f"fc_ of {num_inputs}->{num_outputs} with weights {weights}, {params.size} params"
        )
    return dl.FcLayer(params.reshape(num_inputs, num_outputs).copy())


_LAYER_READERS: dict[str, Callable[[_Reader, str], dl.Layer]] = {
    "con_4": _read_con,
    "con_5": _read_con,
    "con_6": _read_con,
    "affine_": _read_affine,
    "affine_2": _read_affine,
    "relu_": _read_relu,
    "relu_2": _read_relu,
    "max_pool_2": _read_pool,
    "avg_pool_2": _read_pool,
    "add_prev_": _read_add_prev,
    "fc_2": _read_fc,
    "fc_3": _read_fc,
}


def _read_layer_details(r: _Reader) -> dl.Layer:
    version = r.name("layer type")
    reader = _LAYER_READERS.get(version)
    if reader is None:
        raise r.fail(f"unsupported dlib layer {version!r}")
    return reader(r, version)


def _skip_training_state(r: _Reader, version: int, bottom: bool) -> None:
    """What add_layer writes after its details: three bools and the cached tensors (empty in a
    saved model, but read through so the next layer starts at the right byte)."""
    for what in ("setup_called", "gradient_input_is_stale", "output_disabled"):
        r.boolean(f"add_layer {what}")
    # x_grad, cached_output, then params_grad (add_layer v2) or grad_final (input-bound).
    for _ in range(3):
        r.tensor("add_layer cached state")
    if bottom and version >= 3:
        r.integer(4, False, "add_layer sample_expansion_factor")


# ---------------------------------------------------------------------------------------------
# The network as a whole


@dataclass(frozen=True)
class WrapperLayer:
    """A tag or skip layer: in the file only a version number."""


@dataclass(frozen=True)
class ParsedNetwork:
    layers: tuple[dl.Layer | WrapperLayer, ...]  # forward order
    input_mean: tuple[float, float, float]
    input_size: tuple[int, int]
    margin: float
    dist_thresh: float


def _read_loss(r: _Reader) -> tuple[float, float]:
    version = r.int32("add_loss_layer version")
    if version != 1:
        raise r.fail(f"add_loss_layer version {version}, expected 1: not a dlib network")
    name = r.name("loss layer type")
    if name == "loss_metric_":
        return 0.1, 0.75  # the values older dlib hard-coded
    if name != "loss_metric_2":
        raise r.fail(f"loss layer {name!r}: this model ends in loss_metric")
    return r.real("loss_metric margin"), r.real("loss_metric dist_thresh")


def _read_input(r: _Reader) -> tuple[tuple[float, float, float], tuple[int, int]]:
    name = r.name("input layer type")
    if name != "input_rgb_image_sized":
        raise r.fail(f"input layer {name!r}: this model takes input_rgb_image_sized")
    mean = (r.real("avg_red"), r.real("avg_green"), r.real("avg_blue"))
    size = (r.uint64("input nr"), r.uint64("input nc"))
    if not all(math.isfinite(m) for m in mean):
        raise r.fail(f"non-finite input mean {mean}")
    return mean, size


def parse_network(data: bytes) -> ParsedNetwork:
    r = _Reader(data)
    margin, dist_thresh = _read_loss(r)

    # Headers, output to input. add_layer writes version 2 (3 for the one holding the input
    # layer), tag/skip layers version 1. The input-bound layer is recognised by the input
    # layer's type name that follows its version, which no header can look like.
    headers: list[int | None] = []  # add_layer version, or None for a tag/skip
    while True:
        if len(headers) > MAX_DEPTH:
            raise r.fail(f"network nests more than {MAX_DEPTH} layers")
        version = r.int32("layer header")
        next_name = r.peek_name()
        if next_name is not None and next_name.startswith("input"):
            if version not in (2, 3):
                raise r.fail(f"input-bound add_layer version {version}, expected 2 or 3")
            bottom_version = version
            break
        if version == 1:
            headers.append(None)
        elif version == 2:
            headers.append(version)
        else:
            raise r.fail(f"unexpected layer header version {version}")

    mean, size = _read_input(r)
    layers: list[dl.Layer | WrapperLayer] = [_read_layer_details(r)]
    _skip_training_state(r, bottom_version, bottom=True)
    for header in reversed(headers):
        if header is None:
            layers.append(WrapperLayer())
        else:
            layers.append(_read_layer_details(r))
            _skip_training_state(r, header, bottom=False)
    if r.remaining:
        raise r.fail(f"{r.remaining} unexpected bytes after the network")
    return ParsedNetwork(tuple(layers), mean, size, margin, dist_thresh)
