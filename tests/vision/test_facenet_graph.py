"""FaceNetGraph on a small frozen graph with FaceNet's tensor names.

The real 20180402-114759.pb cannot be had here, so the test builds a TF1-style graph the way
facenet's training did (in a `tf.Graph`, with `tf.compat.v1`): placeholders `input` (float32
(?, 160, 160, 3)) and `phase_train` (bool), conv/pool layers with seeded random weights, a
batch norm switched by phase_train with a v1 `cond` (Switch/Merge, as in the 2018 graph), and an
L2-normalised `embeddings` output (16-D). It freezes the variables into constants, writes the
.pb, and checks `load_facenet` against the original graph run in a tf.compat.v1.Session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from facelive.vision.facenet import FaceNetGraph, load_facenet

DIM = 16
SIZE = 160


def _variable(rng: np.random.Generator, shape: tuple[int, ...], name: str) -> tf.Variable:
    return tf.compat.v1.Variable(rng.normal(0.0, 0.3, shape).astype(np.float32), name=name)


def _batch_norm(x: tf.Tensor, phase_train: tf.Tensor, rng: np.random.Generator) -> tf.Tensor:
    """Batch statistics when training, stored moving averages otherwise (like slim's)."""
    channels = x.shape[-1]
    moving_mean = _variable(rng, (channels,), "bn/moving_mean")
    moving_var = tf.compat.v1.Variable(
        rng.uniform(0.5, 2.0, channels).astype(np.float32), name="bn/moving_variance"
    )

    def training() -> tuple[tf.Tensor, tf.Tensor]:
        return tf.nn.moments(x, axes=[0, 1, 2])

    def inference() -> tuple[tf.Tensor, tf.Tensor]:
        return tf.identity(moving_mean), tf.identity(moving_var)

    mean, var = tf.compat.v1.cond(phase_train, training, inference)
    return tf.nn.batch_normalization(x, mean, var, None, None, 1e-3)


def _build(names: dict[str, str], input_via_identity: bool = False, seed: int = 7):
    """A FaceNet-like graph; `names` may rename the three tensors (for the negative tests).
    Returns (graph, images placeholder, phase placeholder, output tensor)."""
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        if input_via_identity:
            # Like facenet's training graphs, where `input` is an Identity of the image batch.
            batch = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3], "image_batch")
            images = tf.identity(batch, name=names["input"])
        else:
            images = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3], names["input"])
        phase = tf.compat.v1.placeholder(tf.bool, [], names["phase_train"])
        x = tf.nn.conv2d(images, _variable(rng, (3, 3, 3, 8), "conv1/w"), 2, "SAME")
        x = tf.nn.relu(_batch_norm(x, phase, rng))
        x = tf.nn.max_pool2d(x, 3, 2, "SAME")
        x = tf.nn.relu(tf.nn.conv2d(x, _variable(rng, (3, 3, 8, DIM), "conv2/w"), 2, "SAME"))
        x = tf.reduce_mean(x, axis=[1, 2])
        prelogits = tf.matmul(x, _variable(rng, (DIM, DIM), "fc/w"))
        out = tf.math.l2_normalize(prelogits, 1, 1e-10, name=names["embeddings"])
    return graph, batch if input_via_identity else images, phase, out


FACENET_NAMES = {"input": "input", "phase_train": "phase_train", "embeddings": "embeddings"}


def _freeze(names: dict[str, str], images_np: np.ndarray, **kw: object):
    """Build, freeze to a GraphDef, and run the unfrozen graph in a Session on `images_np`.
    The graph uses v1 control flow (Switch/Merge) like the 2018 model; the global switch is
    restored afterwards."""
    v2_was_on = tf.compat.v1.control_flow_v2_enabled()
    tf.compat.v1.disable_control_flow_v2()
    try:
        graph, images, phase, out = _build(names, **kw)
    finally:
        if v2_was_on:
            tf.compat.v1.enable_control_flow_v2()
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            sess, graph.as_graph_def(), [out.op.name]
        )
        reference = sess.run(out, {images: images_np, phase: False})
    return frozen, reference


def _images(n: int, seed: int) -> np.ndarray:
    """Standardised-looking images: (x - 127.5) / 128 of random pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3))
    return ((pixels - 127.5) / 128.0).astype(np.float32)


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return _images(4, seed=1)


@pytest.fixture(scope="module")
def frozen_pb(tmp_path_factory: pytest.TempPathFactory, batch: np.ndarray):
    frozen, reference = _freeze(FACENET_NAMES, batch)
    ops = {node.op for node in frozen.node}
    assert {"Switch", "Merge"} <= ops and not ops & {"VariableV2", "VarHandleOp"}
    path = tmp_path_factory.mktemp("facenet") / "small-facenet.pb"
    path.write_bytes(frozen.SerializeToString())
    return path, reference


@pytest.fixture(scope="module")
def net(frozen_pb) -> FaceNetGraph:
    return load_facenet(frozen_pb[0])


def test_embeddings_shape_norm_and_dim(net: FaceNetGraph, batch: np.ndarray) -> None:
    assert net.dim == DIM
    out = net(batch)
    assert out.dtype == tf.float32
    assert out.shape == (len(batch), DIM)
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=1), 1.0, atol=1e-5)


def test_same_as_the_original_graph_in_a_session(net: FaceNetGraph, frozen_pb, batch) -> None:
    np.testing.assert_allclose(net(batch).numpy(), frozen_pb[1], atol=1e-5)


def test_batch_consistency(net: FaceNetGraph, batch: np.ndarray) -> None:
    together = net(batch).numpy()
    for i in range(len(batch)):
        alone = net(batch[i : i + 1]).numpy()
        np.testing.assert_allclose(alone[0], together[i], atol=1e-5)


def test_different_images_give_different_embeddings(net: FaceNetGraph, batch) -> None:
    out = net(batch).numpy()
    assert np.linalg.norm(out[0] - out[1]) > 1e-2
    other = net(_images(1, seed=99)).numpy()[0]
    assert np.linalg.norm(other - out[0]) > 1e-2


def test_callable_inside_a_tf_function(net: FaceNetGraph, batch: np.ndarray) -> None:
    """How FaceNetEmbedder uses it: uint8 crops, fixed standardisation, in a tf.function."""

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.uint8)])
    def embed(crops: tf.Tensor) -> tf.Tensor:
        return net((tf.cast(crops, tf.float32) - 127.5) / 128.0)

    crops = np.random.default_rng(1).integers(0, 256, (4, SIZE, SIZE, 3)).astype(np.uint8)
    np.testing.assert_allclose(embed(crops).numpy(), net(batch).numpy(), atol=1e-5)


def test_input_may_be_an_identity(tmp_path: Path) -> None:
    images = _images(2, seed=5)
    frozen, reference = _freeze(FACENET_NAMES, images, input_via_identity=True, seed=3)
    path = tmp_path / "identity-input.pb"
    path.write_bytes(frozen.SerializeToString())
    np.testing.assert_allclose(load_facenet(path)(images).numpy(), reference, atol=1e-5)


def test_not_a_graph_def_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "random.pb"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="random.pb"):
        load_facenet(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="not a FaceNet graph"):
        load_facenet(path)


def test_graph_without_embeddings_is_a_value_error(tmp_path: Path) -> None:
    names = dict(FACENET_NAMES, embeddings="features")
    frozen, _ = _freeze(names, _images(1, seed=2))
    path = tmp_path / "features.pb"
    path.write_bytes(frozen.SerializeToString())
    with pytest.raises(ValueError, match="has no tensor embeddings:0"):
        load_facenet(path)
