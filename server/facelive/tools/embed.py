"""`facelive embed`'s output: the embeddings of image files (tools/embedding.py makes them)
written to an .npz: embeddings (N, D) float32 unit rows, files (N,) and labels (N,) strings
(label = the file's parent folder name), embedder (the embedder id).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facelive.atomic import atomic_path
from facelive.tools.embedding import Embedded
from facelive.tools.errors import ToolError


def save_embeddings(target: Path, embedded: Embedded, embedder: str) -> None:
    """Write embeddings, files, labels (parent folder names) and the embedder id to an .npz,
    atomically. Plain arrays only: it loads with np.load(..., allow_pickle=False)."""
    files = np.array([str(p) for p in embedded.files], dtype=np.str_)
    labels = np.array([Path(p).parent.name for p in embedded.files], dtype=np.str_)
    skipped = np.array([str(p) for p in embedded.failed], dtype=np.str_)
    reasons = np.array(list(embedded.failed.values()), dtype=np.str_)
    with (atomic_path(Path(target), suffix=".npz", cannot_create=ToolError) as tmp,
          open(tmp, "wb") as handle):
        np.savez(
            handle,
            embeddings=embedded.vectors,
            files=files,
            labels=labels,
            embedder=np.array(embedder),
            skipped_files=skipped,
            skipped_reasons=reasons,
            counts=np.array(json.dumps(embedded.counts)),
        )
