"""KNN and gallery benchmark: median milliseconds.

    python bench/knn.py [--json] [--repeat N] [--sizes 10000,100000] [--dim 128]

- query: one batch of 8 embeddings against N stored vectors (the in-graph KNN, one call);
- add10: appending 10 vectors to the KNN holding N;
- gallery_add10: storing 10 examples (face patches + vectors) in one SQLite transaction
  (synchronous=FULL, so it includes the fsync) in a gallery file holding a few hundred.
Vectors are random unit vectors: the KNN's cost does not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from facelive.recognition.gallery import Gallery  # noqa: E402
from facelive.recognition.knn import KnnIndex  # noqa: E402
from facelive.recognition.patches import make_patch  # noqa: E402


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_knn(size: int, dim: int, repeat: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    index = KnnIndex(dim, k=5)
    index.add(unit(rng, size, dim), rng.integers(0, max(size // 5, 1), size))
    queries = unit(rng, 8, dim)
    query = median_ms(lambda: index.query(queries, 0.47), repeat)
    extra = unit(rng, 10, dim)
    add10 = median_ms(lambda: index.add(extra, 7), repeat)
    return {"query_b8_ms": query, "add10_ms": add10, "rows": len(index),
            "traces": index.trace_count()}


def bench_gallery(repeat: int) -> float:
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    image = cv2.resize(small, (250, 250), interpolation=cv2.INTER_CUBIC)
    box = np.array([70, 60, 180, 190], np.float32)
    landmarks = np.array([[100, 110], [150, 110], [125, 140], [105, 165], [145, 165]],
                         np.float32)
    patches = [make_patch(image, box, landmarks) for _ in range(10)]
    with tempfile.TemporaryDirectory() as folder, Gallery(Path(folder) / "g.sqlite3") as g:
        counter = iter(range(10**9))
        return median_ms(
            lambda: g.add_examples(f"P{next(counter)}", patches, unit(rng, 10, 128),
                                   "dlib-resnet", "upload"),
            repeat,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "knn": {size: bench_knn(size, args.dim, args.repeat)
                for size in (int(s) for s in args.sizes.split(","))},
        "gallery_add10_ms": bench_gallery(args.repeat),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for size, row in result["knn"].items():
            print(f"KNN {size:>7} x {args.dim}-D: batch-8 query {row['query_b8_ms']} ms, "
                  f"add 10 {row['add10_ms']} ms")
        print(f"gallery: add 10 examples (one transaction) {result['gallery_add10_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
