"""KNN and gallery benchmark: median milliseconds.

    python bench/knn.py [--json] [--repeat N] [--sizes 1000,10000,100000,1000000]
                        [--dims 128,512] [--search auto|float32|bfloat16|both]

- query_b8: one batch of 8 embeddings against N stored vectors (the in-graph KNN, one call:
  matmul, two-stage top-k, vote; `search` says whether the matmul read the bfloat16 copy);
- add10: appending 10 vectors to the KNN holding N (the embedding itself not counted);
- gallery_add10: storing 10 examples (face patches + vectors) in one SQLite transaction
  (synchronous=FULL, so it includes the fsync) in a gallery file holding a few hundred.
Vectors are random unit vectors: the KNN's cost does not depend on their values. Medians, and
the 90th percentile, over `repeat` runs after 3 warm-up runs; other load on the machine shows
up as a wide gap between the two.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchutil import machine, timings_ms  # noqa: E402
from facelive.recognition.gallery import Gallery  # noqa: E402
from facelive.recognition.knn import KnnIndex, native_bfloat16  # noqa: E402
from facelive.recognition.patches import make_patch  # noqa: E402

# Rows per add() while filling an index: bounds the temporary copies for 1M x 512-D.
FILL_CHUNK = 100_000


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_knn(size: int, dim: int, repeat: int, search: str) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    index = KnnIndex(dim, k=5, search=search)  # type: ignore[arg-type]
    for start in range(0, size, FILL_CHUNK):
        n = min(FILL_CHUNK, size - start)
        index.add(unit(rng, n, dim), rng.integers(0, max(size // 5, 1), n))
    queries = unit(rng, 8, dim)
    query = timings_ms(lambda: index.query(queries, 0.34), repeat)
    extra = unit(rng, 10, dim)
    add10 = timings_ms(lambda: index.add(extra, 7), repeat)
    return {"query_b8_ms": query["median"], "query_b8_p90_ms": query["p90"],
            "add10_ms": add10["median"], "add10_p90_ms": add10["p90"],
            "rows": len(index), "capacity": index.capacity, "search": index.active_search,
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
        return timings_ms(
            lambda: g.add_examples(f"P{next(counter)}", patches, unit(rng, 10, 128),
                                   "dlib-resnet", "upload"),
            repeat,
        )["median"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--dims", default="128,512")
    parser.add_argument("--search", choices=("auto", "float32", "bfloat16", "both"),
                        default="auto")
    args = parser.parse_args()
    searches = ["float32", "bfloat16"] if args.search == "both" else [args.search]
    rows = []
    for dim in (int(d) for d in args.dims.split(",")):
        for size in (int(s) for s in args.sizes.split(",")):
            for search in searches:
                rows.append({"dim": dim, "size": size,
                             **bench_knn(size, dim, args.repeat, search)})
                gc.collect()  # the 1M x 512-D index holds 3 GB: free it before the next
    result = {
        "machine": machine(native_bfloat16=native_bfloat16(),
                           load_average=[round(v, 2) for v in os.getloadavg()]),
        "knn": rows,
        "gallery_add10_ms": bench_gallery(args.repeat),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for row in rows:
            print(f"KNN {row['size']:>8} x {row['dim']}-D ({row['search']}): batch-8 query "
                  f"{row['query_b8_ms']} ms (p90 {row['query_b8_p90_ms']}), add 10 "
                  f"{row['add10_ms']} ms (p90 {row['add10_p90_ms']})")
        print(f"gallery: add 10 examples (one transaction) {result['gallery_add10_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
