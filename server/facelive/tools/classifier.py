"""Classifiers over face embeddings, and the model file `facelive train` writes.

- knn: our in-graph KnnIndex (recognition/knn.py), k nearest training embeddings voting with
  weight 1/distance. Closed-set, like the SVM: every neighbour votes whatever its distance
  (the gallery's "unknown" threshold is not applied); the probability is the winner's share
  of the vote weight.
- svm: a linear SVC with Platt-scaled probabilities, as facenet's classifier.py
  (SVC(kernel="linear", probability=True), written the way scikit-learn 1.9 asks, see
  SvmClassifier); the prediction is the most probable class, as facenet did.

The model file is an .npz of plain arrays, loaded with allow_pickle=False: nothing in it is
executed. It keeps the training embeddings and labels, from which both kinds are rebuilt on
load (the KNN *is* its data; the SVM is refitted: deterministic, about a second for a
thousand embeddings), and probabilities computed at training time on a few training rows,
which the refit must reproduce, or loading warns that scikit-learn's version changed the fit.
Pickle (what facenet used) would run arbitrary code from a file someone hands you.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facelive.atomic import atomic_path
from facelive.recognition.knn import KnnIndex
from facelive.tools.errors import ToolError

log = logging.getLogger(__name__)

FORMAT = "facelive-classifier/1"
KINDS = ("knn", "svm")
CHECK_ROWS = 16
# The KNN votes with every neighbour: 2 is the largest distance between unit vectors.
ALL_NEIGHBOURS = 2.0


class Classifier(Protocol):
    def predict(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, D) embeddings -> ((B,) class indices, (B,) probabilities of those classes)."""
        ...


class KnnClassifier:
    def __init__(self, vectors: np.ndarray, labels: np.ndarray, k: int) -> None:
        self.index = KnnIndex(vectors.shape[1], k=min(k, len(vectors)), capacity=len(vectors))
        self.index.add(vectors, labels.astype(np.int64))

    def predict(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(vectors):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        result = self.index.query(vectors, ALL_NEIGHBOURS)
        valid = result.neighbour_labels >= 0
        weights = np.where(valid, 1.0 / (result.distances + 1e-6), 0.0)
        winner = result.candidate[:, None]
        share = (weights * (result.neighbour_labels == winner)).sum(1) / weights.sum(1)
        return result.candidate.astype(np.int64), share.astype(np.float32)


class SvmClassifier:
    def __init__(self, vectors: np.ndarray, labels: np.ndarray, c: float) -> None:
        # imported here: scikit-learn is slow to import and only the SVM needs it
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        counts = np.bincount(labels)
        counts = counts[counts > 0]
        if len(counts) < 2:
            raise ToolError("the SVM needs at least two classes to train")
        if counts.min() < 2:
            raise ToolError("the SVM needs at least 2 training images per class "
                            "(its probabilities are cross-validated); use --classifier knn")
        # SVC(probability=True), facenet's choice, is deprecated in scikit-learn 1.9; this is
        # its replacement: Platt (sigmoid) scaling fitted on cross-validated decision values,
        # then one SVC fitted on all the data. Unshuffled stratified folds: deterministic.
        self.model = CalibratedClassifierCV(
            SVC(kernel="linear", C=c), method="sigmoid", cv=int(min(5, counts.min())),
            ensemble=False,
        )
        self.model.fit(vectors, labels)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(B, D) -> (B, n_classes) in label order 0..n-1 (classes without training rows
        cannot occur: every class of a model has rows)."""
        return self.model.predict_proba(vectors)

    def predict(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(vectors):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        proba = self.probabilities(vectors)
        best = proba.argmax(1)
        classes = self.model.classes_.astype(np.int64)
        return classes[best], proba[np.arange(len(best)), best].astype(np.float32)


@dataclass
class ClassifierModel:
    """What a model file holds. labels index class_names; params: {"k"} for knn, {"C"} for
    svm; check: probabilities of the first CHECK_ROWS training rows at training time (svm).
    """

    kind: str
    embedder: str
    class_names: list[str]
    vectors: np.ndarray
    labels: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    check: np.ndarray | None = None
    _fitted: Classifier | None = field(default=None, repr=False)

    @classmethod
    def train(
        cls,
        kind: str,
        embedder: str,
        class_names: Sequence[str],
        vectors: np.ndarray,
        labels: np.ndarray,
        k: int = 5,
        c: float = 1.0,
    ) -> ClassifierModel:
        if kind not in KINDS:
            raise ToolError(f"--classifier must be one of {', '.join(KINDS)}, got {kind!r}")
        if not len(vectors):
            raise ToolError("no training embeddings")
        params: dict[str, Any] = {"k": int(k)} if kind == "knn" else {"C": float(c)}
        model = cls(kind, embedder, list(class_names), np.asarray(vectors, np.float32),
                    np.asarray(labels, np.int64), params)
        fitted = model.fitted()
        if isinstance(fitted, SvmClassifier):
            model.check = fitted.probabilities(model.vectors[:CHECK_ROWS]).astype(np.float64)
        return model

    def fitted(self) -> Classifier:
        if self._fitted is None:
            if self.kind == "knn":
                self._fitted = KnnClassifier(self.vectors, self.labels, int(self.params["k"]))
            else:
                self._fitted = SvmClassifier(self.vectors, self.labels, float(self.params["C"]))
        return self._fitted

    def predict(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, D) embeddings -> ((B,) indices into class_names, (B,) probabilities)."""
        return self.fitted().predict(np.asarray(vectors, np.float32))

    def save(self, target: Path) -> None:
        meta = {
            "format": FORMAT,
            "kind": self.kind,
            "embedder": self.embedder,
            "params": self.params,
        }
        if self.kind == "svm":
            import sklearn

            meta["sklearn"] = sklearn.__version__
        arrays: dict[str, Any] = {
            "meta": np.array(json.dumps(meta)),
            "class_names": np.array(self.class_names, dtype=np.str_),
            "vectors": self.vectors,
            "labels": self.labels,
        }
        if self.check is not None:
            arrays["check"] = self.check
        with (atomic_path(Path(target), suffix=".npz", cannot_create=ToolError) as tmp,
              open(tmp, "wb") as handle):
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: Path) -> ClassifierModel:
        """Read and validate a model file; ToolError (one line) for anything wrong with it.
        The classifier is rebuilt on first use (see the module docstring)."""
        path = Path(path)
        if not path.is_file():
            raise ToolError(f"{path}: no such model file")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                names = [str(n) for n in data["class_names"]]
                vectors = np.asarray(data["vectors"], np.float32)
                labels = np.asarray(data["labels"], np.int64)
                check = np.asarray(data["check"], np.float64) if "check" in data else None
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            raise ToolError(f"{path}: not a facelive classifier model ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ToolError(f"{path}: not a {FORMAT} model")
        kind = meta.get("kind")
        if kind not in KINDS:
            raise ToolError(f"{path}: unknown classifier kind {kind!r}")
        params = meta.get("params") or {}
        ok = (
            vectors.ndim == 2 and len(vectors) == len(labels) and len(vectors) > 0
            and np.all(np.isfinite(vectors)) and len(names) > 0
            and labels.min() >= 0 and labels.max() < len(names)
        )
        try:
            ok = ok and (kind == "svm" or 1 <= int(params["k"]) <= 100)
            ok = ok and (kind == "knn" or float(params["C"]) > 0)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ToolError(f"{path}: damaged model (inconsistent arrays or parameters)")
        model = cls(kind, str(meta.get("embedder")), names, vectors, labels, params, check)
        if check is not None:
            again = model.fitted()
            assert isinstance(again, SvmClassifier)
            rows = again.probabilities(vectors[: len(check)])
            if rows.shape != check.shape or not np.allclose(rows, check, atol=1e-3):
                log.warning("%s: the refitted SVM differs from the trained one (trained with "
                            "scikit-learn %s); retrain for exact results", path,
                            meta.get("sklearn", "?"))
        return model
