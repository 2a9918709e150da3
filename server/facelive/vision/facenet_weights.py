"""Read FaceNet's Inception-ResNet-v1 weights by layer name into `inception_resnet_v1.Unit`s.

Three sources, one network (facelive.vision.inception_resnet_v1):

- the Keras conversion `facenet_keras.h5` (20170512-110547, MS-Celeb-1M, 128-D), read with
  h5py. Never through Keras' own loader: the file's Lambda layers hold pickled Python 3.6
  bytecode, which a newer Python cannot run (and which is code we would be executing);
- a TF-slim checkpoint (`model-20180402-114759.ckpt-275.index` + `.data-*`, VGGFace2,
  512-D), read with `tf.train.load_checkpoint`;
- a frozen GraphDef (`20180402-114759.pb`): freezing turned each variable into a Const node
  of the same name, so its weights are read the same way, without importing the graph (which
  would bring the TF1 training graph, its `phase_train` switch and its own normalisation).

Names: ours are the slim scopes without `InceptionResnetV1/` (see inception_resnet_v1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from facelive.vision.inception_resnet_v1 import BOTTLENECK, LAYERS, UNIT_NAMES, Unit, check_units

SLIM_PREFIX = "InceptionResnetV1/"
_BN = ("beta", "moving_mean", "moving_variance")


def keras_name(name: str) -> str:
    """Our name -> the layer name in facenet_keras.h5 (`Repeat/block35_2/Branch_0/Conv2d_1x1`
    -> `Block35_2_Branch_0_Conv2d_1x1`; the last Block8 is `Block8_6`)."""
    parts = name.split("/")
    head = parts[0]
    if head.startswith("Repeat"):
        block = parts[1]  # block35_2
        kind, number = block.split("_")
        parts = [f"{kind[0].upper()}{kind[1:]}_{number}", *parts[2:]]
    elif head == "Block8":
        parts = ["Block8_6", *parts[1:]]
    return "_".join(parts)


# get(our name, field) -> the array or None; field is "kernel", "bias" or a batch norm field.
Getter = Callable[[str, str], "np.ndarray | None"]


def _units_from(get: Getter, source: str) -> dict[str, Unit]:
    units: dict[str, Unit] = {}
    for name in UNIT_NAMES:
        has_bn = name == BOTTLENECK or LAYERS[name][4]
        kernel = get(name, "kernel")
        if kernel is None:
            raise ValueError(f"{source} has no weights for layer {name}: not a FaceNet model")
        if has_bn:
            stats = [get(name, field) for field in _BN]
            if any(s is None for s in stats):
                raise ValueError(f"{source} has no batch norm for layer {name}")
            units[name] = Unit(kernel, batch_norm=tuple(stats))  # type: ignore[arg-type]
        else:
            bias = get(name, "bias")
            if bias is None:
                raise ValueError(f"{source} has no bias for layer {name}")
            units[name] = Unit(kernel, bias=bias)
    try:
        check_units(units)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return units


def read_keras_h5(path: Path) -> dict[str, Unit]:
    """facenet_keras.h5 -> units; ValueError when it is not that file (or is damaged)."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} is not an HDF5 file: {exc}") from None
    with handle:
        group = handle["model_weights"] if "model_weights" in handle else handle

        def get(name: str, field: str) -> np.ndarray | None:
            layer = keras_name(name)
            if field in _BN:
                layer += "_BatchNorm"
            try:
                return np.asarray(group[layer][f"{layer}/{field}:0"], np.float32)
            except (KeyError, OSError, ValueError):
                return None

        return _units_from(get, str(path))


def slim_name(name: str, field: str) -> str:
    """Our name + field -> the TF-slim variable name (checkpoint and frozen graph)."""
    leaf = {"kernel": "weights", "bias": "biases"}.get(field)
    return f"{SLIM_PREFIX}{name}/{leaf}" if leaf else f"{SLIM_PREFIX}{name}/BatchNorm/{field}"


def read_checkpoint(prefix: Path) -> dict[str, Unit]:
    """A TF checkpoint (`PREFIX.index` + `PREFIX.data-*`) with facenet's slim names -> units."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except (tf.errors.OpError, ValueError) as exc:
        raise ValueError(f"{prefix} is not a readable TF checkpoint: {exc}") from None

    def get(name: str, field: str) -> np.ndarray | None:
        key = slim_name(name, field)
        if not reader.has_tensor(key):
            return None
        return np.asarray(reader.get_tensor(key), np.float32)

    return _units_from(get, str(prefix))


def read_frozen_graph(path: Path) -> dict[str, Unit]:
    """A frozen GraphDef (.pb) -> units, from its Const nodes named like the variables."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(path).read_bytes())
    except DecodeError as exc:
        raise ValueError(f"{path} is not a TensorFlow GraphDef (.pb): {exc}") from None
    consts = {n.name: n for n in graph_def.node if n.op == "Const"}

    def get(name: str, field: str) -> np.ndarray | None:
        node = consts.get(slim_name(name, field))
        if node is None:
            return None
        return np.asarray(tf.make_ndarray(node.attr["value"].tensor), np.float32)

    return _units_from(get, str(path))


def checkpoint_prefix(index_path: Path) -> Path:
    """`X.index` -> `X`, the prefix TF's reader takes."""
    return index_path.with_suffix("")
