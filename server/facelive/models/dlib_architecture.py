"""The network dlib's face-recognition ResNet must be (dlib's
tools/python/src/face_recognition.cpp, anet_type), and the check of a parsed file against it:
layer by layer, with the channel count flowing through, and every weight finite."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facelive.models.dlib_layers import (
    DESCRIPTOR_SIZE,
    AddPrevLayer,
    AffineLayer,
    ConvLayer,
    DlibFormatError,
    FcLayer,
    Layer,
    PoolLayer,
    ReluLayer,
    SkipLayer,
    TagLayer,
)
from facelive.models.dlib_serialize import ParsedNetwork, WrapperLayer

# ---------------------------------------------------------------------------------------------
# The expected architecture (tools/python/src/face_recognition.cpp, anet_type)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the expected network: kind and its fixed hyper-parameters."""

    kind: str  # con, affine, relu, max_pool, avg_pool, tag, skip, add_prev, fc
    filters: int = 0  # con: number of filters; fc: number of outputs
    window: int = 0  # con: kernel size; pools: window size (0 = whole plane)
    stride: int = 1
    tag: int = 0  # tag/skip/add_prev id


def _block(n: int, stride: int) -> list[LayerSpec]:
    """block<N,affine,stride>: con(stride) affine relu con affine, in forward order."""
    return [
        LayerSpec("con", n, 3, stride),
        LayerSpec("affine"),
        LayerSpec("relu"),
        LayerSpec("con", n, 3, 1),
        LayerSpec("affine"),
    ]


def _ares(n: int) -> list[LayerSpec]:
    """relu<add_prev1<block<N,1,tag1<x>>>>."""
    return [
        LayerSpec("tag", tag=1),
        *_block(n, 1),
        LayerSpec("add_prev", tag=1),
        LayerSpec("relu"),
    ]


def _ares_down(n: int) -> list[LayerSpec]:
    """relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,2,tag1<x>>>>>>>: the shortcut is the
    2x2-average-pooled input, zero-padded to the block's channels by add_prev."""
    return [
        LayerSpec("tag", tag=1),
        *_block(n, 2),
        LayerSpec("tag", tag=2),
        LayerSpec("skip", tag=1),
        LayerSpec("avg_pool", window=2, stride=2),
        LayerSpec("add_prev", tag=2),
        LayerSpec("relu"),
    ]


def expected_architecture() -> tuple[LayerSpec, ...]:
    """dlib_face_recognition_resnet_model_v1's layers in forward order (input excluded)."""
    specs = [
        LayerSpec("con", 32, 7, 2),
        LayerSpec("affine"),
        LayerSpec("relu"),
        LayerSpec("max_pool", window=3, stride=2),
    ]
    for _ in range(3):  # alevel4
        specs += _ares(32)
    for n, repeats in ((64, 3), (128, 2), (256, 2)):  # alevel3 .. alevel1
        specs += _ares_down(n)
        for _ in range(repeats):
            specs += _ares(n)
    specs += _ares_down(256)  # alevel0
    specs += [LayerSpec("avg_pool", window=0, stride=1), LayerSpec("fc", DESCRIPTOR_SIZE)]
    return tuple(specs)


def _default_padding(window: int, stride: int) -> int:
    """dlib's default for con_/pools: no padding when strided, else half the window."""
    return 0 if stride != 1 else window // 2


def _check_layer(i: int, spec: LayerSpec, got: Layer | WrapperLayer, channels: int) -> Layer:
    """Check one parsed layer against its spec; return it with ids filled in.
    `channels` is the number of channels flowing into it."""
    where = f"layer {i} (expected {spec.kind})"
    if spec.kind in ("tag", "skip"):
        if not isinstance(got, WrapperLayer):
            raise DlibFormatError(f"{where}: found {type(got).__name__}")
        return TagLayer(spec.tag) if spec.kind == "tag" else SkipLayer(spec.tag)
    if spec.kind == "con":
        pad = _default_padding(spec.window, spec.stride)
        if not (
            isinstance(got, ConvLayer)
            and got.num_filters == spec.filters
            and got.kernel == (spec.window, spec.window)
            and got.stride == (spec.stride, spec.stride)
            and got.padding == (pad, pad)
            and got.in_channels == channels
            and not got.fused_relu
        ):
            raise DlibFormatError(
                f"{where}: want {spec.filters} filters {spec.window}x{spec.window} stride "
                f"{spec.stride} over {channels} channels, found {_describe(got)}"
            )
        return got
    if spec.kind == "affine":
        if not (isinstance(got, AffineLayer) and got.gamma.shape == (channels,)):
            raise DlibFormatError(f"{where} over {channels} channels: found {_describe(got)}")
        return got
    if spec.kind == "relu":
        if not isinstance(got, ReluLayer):
            raise DlibFormatError(f"{where}: found {_describe(got)}")
        return got
    if spec.kind in ("max_pool", "avg_pool"):
        pad = _default_padding(spec.window, spec.stride) if spec.window else 0
        if not (
            isinstance(got, PoolLayer)
            and got.op == spec.kind[:3]
            and got.window == (spec.window, spec.window)
            and got.stride == (spec.stride, spec.stride)
            and got.padding == (pad, pad)
        ):
            raise DlibFormatError(f"{where} window {spec.window}: found {_describe(got)}")
        return got
    if spec.kind == "add_prev":
        if not isinstance(got, AddPrevLayer):
            raise DlibFormatError(f"{where}: found {_describe(got)}")
        return AddPrevLayer(spec.tag)
    if spec.kind == "fc":
        if not (isinstance(got, FcLayer) and got.weight.shape == (channels, spec.filters)):
            raise DlibFormatError(f"{where} {channels}->{spec.filters}: found {_describe(got)}")
        return got
    raise AssertionError(spec.kind)


def _describe(layer: Layer | WrapperLayer) -> str:
    if isinstance(layer, WrapperLayer):
        return "a tag/skip layer"
    if isinstance(layer, ConvLayer):
        return (
            f"con {layer.num_filters} filters {layer.kernel} stride {layer.stride} padding "
            f"{layer.padding} over {layer.in_channels} channels"
        )
    if isinstance(layer, AffineLayer):
        return f"affine over {layer.gamma.shape[0]} channels"
    if isinstance(layer, PoolLayer):
        return f"{layer.op}_pool {layer.window} stride {layer.stride} padding {layer.padding}"
    if isinstance(layer, FcLayer):
        return f"fc {layer.weight.shape}"
    return type(layer).__name__


def check_structure(parsed: ParsedNetwork) -> tuple[Layer, ...]:
    """Match the parsed layers one by one against expected_architecture(), tracking the
    channel count (and the tagged ones) so each layer's input width is checked too."""
    specs = expected_architecture()
    if len(parsed.layers) != len(specs):
        raise DlibFormatError(
            f"the file holds {len(parsed.layers)} layers, this model has {len(specs)}"
        )
    channels = 3
    tagged: dict[int, int] = {}
    checked: list[Layer] = []
    for i, (spec, got) in enumerate(zip(specs, parsed.layers, strict=True)):
        layer = _check_layer(i, spec, got, channels)
        if isinstance(layer, ConvLayer):
            channels = layer.num_filters
        elif isinstance(layer, TagLayer):
            tagged[layer.tag] = channels
        elif isinstance(layer, SkipLayer):
            channels = tagged[layer.tag]
        elif isinstance(layer, AddPrevLayer):
            channels = max(channels, tagged[layer.tag])
        elif isinstance(layer, FcLayer):
            channels = layer.weight.shape[1]
        checked.append(layer)
    return tuple(checked)


def check_weights(layers: tuple[Layer, ...]) -> None:
    for i, layer in enumerate(layers):
        arrays = []
        if isinstance(layer, ConvLayer):
            arrays = [layer.weight, layer.bias]
        elif isinstance(layer, AffineLayer):
            arrays = [layer.gamma, layer.beta]
        elif isinstance(layer, FcLayer):
            arrays = [layer.weight]
        if not all(np.isfinite(a).all() for a in arrays):
            raise DlibFormatError(f"layer {i} ({type(layer).__name__}) has non-finite weights")
