"""How FaceLive's TensorFlow graphs are made: `tf.function` with a fixed input signature and
without AutoGraph.

AutoGraph rewrites the Python source of every function a graph calls (to turn `if`/`for` on
tensors into graph control flow) before tracing it. Our graph code has no such Python control
flow (branches are tf.cond, loops are tensor ops), so the rewrite only costs: it was about 1.3
of the 2.1 s that the first call of the dlib-resnet + KNN graph took (cProfile: ast visits),
paid by every CLI run and every server start (BENCHMARKS.md, session 7). A Python `if` on a
tensor added later fails at its first trace, loudly, instead of being converted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf


def graph_function(signature: Sequence[tf.TensorSpec]) -> Callable[[Callable[..., Any]], Any]:
    """A decorator (or wrapper: graph_function(signature)(fn)) making `fn` one graph for
    inputs of `signature`."""
    return tf.function(input_signature=list(signature), autograph=False)
