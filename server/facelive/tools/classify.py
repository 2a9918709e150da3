"""`facelive train` / `facelive classify`: the protocol of facenet's classifier.py (TRAIN and
CLASSIFY modes) on a folder-per-person data set of raw photos or of `facelive align` crops.

With use_split, both commands make the same split (dataset.split_dataset): train uses the
first train_images images of every class with at least min_images, classify the rest; without
it, each uses the whole folder. classify prints every image's prediction as facenet did
(`   0  Ariel Sharon: 0.998`) and ends with `Accuracy: X`, the share of images whose predicted
class name is their folder's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from facelive.recognition.pipeline import FaceEngine
from facelive.tools.classifier import ClassifierModel
from facelive.tools.dataset import ImageClass, list_dataset, split_dataset
from facelive.tools.embedding import Embedded, embed_images
from facelive.tools.errors import ToolError


@dataclass(frozen=True)
class Protocol:
    """Which images a command uses: all of data_dir, or one side of the split."""

    use_split: bool = False
    min_images: int = 20
    train_images: int = 10

    def select(self, data_dir: Path, side: str) -> list[ImageClass]:
        classes = list_dataset(data_dir)
        if not self.use_split:
            return classes
        train, test = split_dataset(classes, self.min_images, self.train_images)
        return train if side == "train" else test


def _embed_classes(
    engine: FaceEngine,
    classes: list[ImageClass],
    cache_dir: Path | None,
    crops: bool,
    workers: int,
    label: str,
    err: TextIO,
) -> tuple[Embedded, dict[Path, int]]:
    """Embed every image; refuse unreadable files (ToolError naming them), leave out images
    without a face (one line each on `err`). Returns the embeddings and file -> class index."""
    label_of = {path: i for i, c in enumerate(classes) for path in c.paths}
    embedded = embed_images(engine, list(label_of), cache_dir, workers, crops, label)
    unreadable = embedded.unreadable()
    if unreadable:
        first, reason = next(iter(unreadable.items()))
        raise ToolError(
            f"{len(unreadable)} unreadable image(s), e.g. {first}: {reason}; "
            "fix or remove them and run again"
        )
    for path, reason in embedded.failed.items():
        print(f"{path}: {reason}; left out", file=err)
    if not embedded.files:
        raise ToolError("no face found in any image")
    return embedded, label_of


def _check_embedder(model: ClassifierModel, engine: FaceEngine, model_path: Path) -> None:
    if model.embedder != engine.embedder_name:
        raise ToolError(
            f"{model_path} was trained on {model.embedder} embeddings but this run uses "
            f"{engine.embedder_name}; pass --embedder {model.embedder}"
        )


def train(
    engine: FaceEngine,
    data_dir: Path,
    model_path: Path,
    kind: str = "svm",
    protocol: Protocol = Protocol(),
    cache_dir: Path | None = None,
    crops: bool = False,
    workers: int = 2,
    k: int = 5,
    out: Callable[[str], None] = print,
    err: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Embed the training images, fit the classifier, write the model file (atomically).
    Returns a summary: classes, images, left_out, seconds."""
    started = time.monotonic()
    classes = protocol.select(Path(data_dir), "train")
    out(f"Number of classes: {len(classes)}")
    out(f"Number of images: {sum(len(c.paths) for c in classes)}")
    embedded, label_of = _embed_classes(engine, classes, cache_dir, crops, workers, "train",
                                        err)
    labels = np.array([label_of[p] for p in embedded.files], np.int64)
    present = set(labels.tolist())
    empty = [c.name for i, c in enumerate(classes) if i not in present]
    if empty:
        raise ToolError(f"no usable image for class(es) {', '.join(empty[:5])}")
    model = ClassifierModel.train(kind, engine.embedder_name, [c.name for c in classes],
                                  embedded.vectors, labels, k=k)
    model.save(Path(model_path))
    out(f'Saved {kind} classifier model to file "{model_path}"')
    return {
        "classes": len(classes),
        "images": len(embedded.files),
        "left_out": len(embedded.failed),
        "seconds": round(time.monotonic() - started, 1),
    }


def classify(
    engine: FaceEngine,
    data_dir: Path,
    model_path: Path,
    protocol: Protocol = Protocol(),
    cache_dir: Path | None = None,
    crops: bool = False,
    workers: int = 2,
    out: Callable[[str], None] = print,
    err: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Predict every image's class with the model, print the predictions and the accuracy.
    Returns a summary: accuracy, errors, images, left_out, kind, predictions
    [(file, predicted name, probability, true name)], seconds."""
    started = time.monotonic()
    model = ClassifierModel.load(Path(model_path))
    _check_embedder(model, engine, Path(model_path))
    classes = protocol.select(Path(data_dir), "test")
    unknown = [c.name for c in classes if c.name not in model.class_names]
    if unknown:
        print(f"warning: {len(unknown)} class(es) are not in the model, e.g. {unknown[0]}; "
              "their images count as errors", file=err)
    embedded, label_of = _embed_classes(engine, classes, cache_dir, crops, workers, "classify",
                                        err)
    out("Testing classifier")
    predicted, probability = model.predict(embedded.vectors)
    predictions = []
    for i, (path, index, prob) in enumerate(zip(embedded.files, predicted, probability,
                                                strict=True)):
        name = model.class_names[int(index)]
        predictions.append((str(path), name, float(prob), classes[label_of[path]].name))
        out(f"{i:4d}  {name}: {prob:.3f}")
    errors = sum(1 for _, name, _, truth in predictions if name != truth)
    accuracy = 1.0 - errors / len(predictions)
    out(f"Errors: {errors} of {len(predictions)} ({model.kind}, {model.embedder})")
    out(f"Accuracy: {accuracy:.4f}")
    return {
        "accuracy": accuracy,
        "errors": errors,
        "images": len(predictions),
        "left_out": len(embedded.failed),
        "kind": model.kind,
        "predictions": predictions,
        "seconds": round(time.monotonic() - started, 1),
    }
