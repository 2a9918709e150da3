"""FaceNet (davidsandberg/facenet 20180402-114759) as a frozen TF1 GraphDef, run in TF2.

The .pb is imported into a `tf.compat.v1.wrap_function` graph and pruned to one concrete
function: feed `input:0` (float32 (N, 160, 160, 3)) and `phase_train:0` (bool, always False:
inference, so batch norm uses its moving averages and each image's embedding does not depend on
the rest of the batch), fetch `embeddings:0` ((N, D) float32, L2-normalised by the graph).

Standardisation is the caller's job. The 20180402-114759 model was trained with facenet's
"fixed image standardisation", `(x - 127.5) / 128` on RGB pixels in [0, 255] (facenet issue
"fixed image standardisation", used with `--use_fixed_image_standardization`), not the older
per-image `prewhiten`; `facelive.vision.embedders.FaceNetEmbedder` applies it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

INPUT = "input:0"
PHASE_TRAIN = "phase_train:0"
EMBEDDINGS = "embeddings:0"
IMAGE_SIZE = 160


def parse_graph_def(data: bytes, source: str = "graph") -> tf.compat.v1.GraphDef:
    """Bytes of a serialized GraphDef -> GraphDef; ValueError when they are not one."""
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(f"{source} is not a TensorFlow GraphDef (.pb): {exc}") from None
    return graph_def


def _check_names(graph_def: tf.compat.v1.GraphDef, source: str) -> None:
    names = {node.name for node in graph_def.node}
    missing = [t for t in (INPUT, PHASE_TRAIN, EMBEDDINGS) if t.split(":")[0] not in names]
    if missing:
        raise ValueError(
            f"{source} is not a FaceNet graph: it has no tensor {', '.join(missing)} "
            f"({len(names)} nodes)"
        )


class FaceNetGraph:
    """A frozen FaceNet graph as a TF2 callable: (N, 160, 160, 3) standardised float32 images
    -> (N, dim) float32 embeddings. Callable eagerly or inside a `tf.function`."""

    def __init__(self, graph_def: tf.compat.v1.GraphDef, source: str = "graph") -> None:
        _check_names(graph_def, source)

        def _import() -> None:
            tf.graph_util.import_graph_def(graph_def, name="")

        try:
            wrapped = tf.compat.v1.wrap_function(_import, [])
            graph = wrapped.graph
            images = graph.get_tensor_by_name(INPUT)
            phase_train = graph.get_tensor_by_name(PHASE_TRAIN)
            embeddings = graph.get_tensor_by_name(EMBEDDINGS)
        except (ValueError, KeyError, TypeError, tf.errors.OpError) as exc:
            raise ValueError(f"{source}: cannot import the graph: {exc}") from exc
        if images.dtype != tf.float32 or phase_train.dtype != tf.bool:
            raise ValueError(
                f"{source}: {INPUT} must be float32 and {PHASE_TRAIN} bool, got "
                f"{images.dtype.name} and {phase_train.dtype.name}"
            )
        if embeddings.shape.rank != 2:
            raise ValueError(f"{source}: {EMBEDDINGS} must be (N, D), got {embeddings.shape}")
        # Only the path input -> embeddings is kept (training ops, queues etc. are dropped).
        self._fn = wrapped.prune(feeds=[images, phase_train], fetches=embeddings)
        self._phase_train = tf.constant(False)
        self.source = source
        dim = embeddings.shape[-1]
        self.dim: int = int(dim) if dim is not None else self._probe_dim()

    def _probe_dim(self) -> int:
        """D when the graph does not declare it statically: run one blank image."""
        blank = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32)
        return int(self(blank).shape[-1])

    def __call__(self, images: tf.Tensor | np.ndarray) -> tf.Tensor:
        """(N, 160, 160, 3) float32, already standardised -> (N, dim) float32 embeddings."""
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank is not None and images.shape.rank != 4:
            raise ValueError(f"FaceNet expects (N, 160, 160, 3) images, got {images.shape}")
        return self._fn(images, self._phase_train)


def load_facenet(pb_path: Path) -> FaceNetGraph:
    """Load a frozen FaceNet .pb; ValueError when it is not a GraphDef with FaceNet's tensor
    names (input, phase_train, embeddings)."""
    pb_path = Path(pb_path)
    graph_def = parse_graph_def(pb_path.read_bytes(), str(pb_path))
    return FaceNetGraph(graph_def, str(pb_path))
