"""Our Inception-ResNet-v1 reads the same weights by name from all three of FaceNet's forms:
a TF-slim checkpoint (written here with TF's own SaveV2 op under facenet's variable names),
a frozen GraphDef (Const nodes of those names) and the Keras .h5 layout. The weights are
small random ones of the right structure (every width / 16), so the test is quick; the real
files are checked in test_facenet_parity.py."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from facelive.vision import facenet_weights as fw
from facelive.vision.inception_resnet_v1 import BOTTLENECK, InceptionResNetV1, Unit, random_units

# With TensorFlow's start-up, each file takes 40-50 s on the busy 2-core machine.
pytestmark = pytest.mark.slow

UNITS = random_units(divisor=16, dim=8, seed=3)
IMAGES = np.random.default_rng(1).normal(size=(3, 160, 160, 3)).astype(np.float32)


def _arrays(units: dict[str, Unit]):
    for name, unit in units.items():
        yield name, "kernel", unit.kernel
        if unit.bias is not None:
            yield name, "bias", unit.bias
        if unit.batch_norm is not None:
            for field, value in zip(("beta", "moving_mean", "moving_variance"), unit.batch_norm,
                                    strict=True):
                yield name, field, value


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return InceptionResNetV1(UNITS)(IMAGES).numpy()


def _same(units: dict[str, Unit], reference: np.ndarray) -> None:
    out = InceptionResNetV1(units)(IMAGES).numpy()
    assert out.shape == (3, 8)
    np.testing.assert_array_equal(out, reference)


def test_checkpoint_with_slim_names(tmp_path: Path, reference: np.ndarray) -> None:
    items = list(_arrays(UNITS))
    names = [fw.slim_name(n, f) for n, f, _ in items]
    # A decoy of the training graph's kind: readers must pick by name, not by order.
    names.append("InceptionResnetV1/Conv2d_1a_3x3/weights/Adam")
    tensors = [tf.constant(a) for _, _, a in items] + [tf.zeros([3])]
    prefix = tmp_path / "model-tiny.ckpt-1"
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)
    assert (tmp_path / "model-tiny.ckpt-1.index").is_file()
    units = fw.read_checkpoint(fw.checkpoint_prefix(tmp_path / "model-tiny.ckpt-1.index"))
    _same(units, reference)


def test_frozen_graph_constants(tmp_path: Path, reference: np.ndarray) -> None:
    graph = tf.Graph()
    with graph.as_default():
        for name, field, array in _arrays(UNITS):
            tf.constant(array, name=fw.slim_name(name, field))
        tf.compat.v1.placeholder(tf.float32, [None, 160, 160, 3], name="input")
    path = tmp_path / "tiny.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    _same(fw.read_frozen_graph(path), reference)


def test_keras_h5_layout(tmp_path: Path, reference: np.ndarray) -> None:
    path = tmp_path / "tiny.h5"
    with h5py.File(path, "w") as handle:
        group = handle.create_group("model_weights")
        for name, field, array in _arrays(UNITS):
            layer = fw.keras_name(name) + ("" if field in ("kernel", "bias") else "_BatchNorm")
            group.require_group(layer)[f"{layer}/{field}:0"] = array
    _same(fw.read_keras_h5(path), reference)


def test_keras_names() -> None:
    assert fw.keras_name("Repeat/block35_2/Branch_0/Conv2d_1x1") == "Block35_2_Branch_0_Conv2d_1x1"
    assert fw.keras_name("Repeat_1/block17_10/Conv2d_1x1") == "Block17_10_Conv2d_1x1"
    assert fw.keras_name("Block8/Branch_1/Conv2d_0c_3x1") == "Block8_6_Branch_1_Conv2d_0c_3x1"
    assert fw.keras_name("Mixed_6a/Branch_1/Conv2d_0b_3x3") == "Mixed_6a_Branch_1_Conv2d_0b_3x3"
    assert fw.keras_name(BOTTLENECK) == "Bottleneck"


def test_incomplete_or_foreign_files_are_named(tmp_path: Path) -> None:
    prefix = tmp_path / "partial.ckpt"
    items = [i for i in _arrays(UNITS) if i[0] != "Mixed_7a/Branch_2/Conv2d_0b_3x3"]
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=[fw.slim_name(n, f) for n, f, _ in items],
                      shape_and_slices=[""] * len(items),
                      tensors=[tf.constant(a) for _, _, a in items])
    with pytest.raises(ValueError, match="no weights for layer Mixed_7a/Branch_2/Conv2d_0b_3x3"):
        fw.read_checkpoint(prefix)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5" * 100)
    with pytest.raises(ValueError, match="not an HDF5 file"):
        fw.read_keras_h5(junk)
    with pytest.raises(ValueError, match="not a TensorFlow GraphDef"):
        fw.read_frozen_graph(junk)
    with pytest.raises(ValueError, match="not a readable TF checkpoint"):
        fw.read_checkpoint(tmp_path / "nothing-here")
