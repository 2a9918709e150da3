"""Adding faces to someone already in the gallery: do the new faces look like that person?

A name typed into the page is easy to get wrong (or to pick from the list of known names), and
faces added under the wrong name make every later sighting of one person read as the other.
So before new faces join an existing person, each is compared with that person's stored
examples; a face farther from all of them than the match threshold is "unlike", and the
enrolment is refused (nothing stored) unless the caller says to store them anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facelive.recognition.gallery import Gallery, PersonNotFound
from facelive.vision.fused_distance import FusedDistance, pairwise


@dataclass  # not frozen: raising sets __traceback__
class UnlikeFaces(Exception):
    """Refused: `unlike` of `total` new faces are farther than `threshold` from every stored
    example of `name`; `closest`: the smallest distance of those unlike faces."""

    name: str
    unlike: int
    total: int
    closest: float
    threshold: float

    def __str__(self) -> str:
        if self.unlike == self.total:
            which = ("none of the new faces looks" if self.total > 1
                     else "the new face does not look")
        else:
            which = f"{self.unlike} of the {self.total} new faces do not look"
        return (f"{which} like {self.name}'s examples (closest distance {self.closest:.3f}, "
                f"a match needs at most {self.threshold:.3f}): is this someone else?")


def nearest_distances(
    vectors: np.ndarray, examples: np.ndarray, metric: FusedDistance | None = None
) -> np.ndarray:
    """(B, D) and (N, D) unit vectors -> (B,) distance of each vector to its nearest example
    (Euclidean, or the embedder's `metric`)."""
    return pairwise(metric, vectors, examples).min(axis=1)


def check_same_person(
    gallery: Gallery, embedder: str, threshold: float, metric: FusedDistance | None = None
) -> Callable[[str, np.ndarray, list[int]], None]:
    """A Recognizer.enroll check: raises UnlikeFaces when `name` is someone already stored and
    some new face is unlike all of their examples. A new name, or a person without vectors of
    this embedder, passes."""

    def check(name: str, vectors: np.ndarray, positions: list[int]) -> None:
        try:
            person = gallery.person(name)
        except PersonNotFound:
            return
        stored = gallery.vectors(embedder)
        examples = stored.matrix[stored.labels == person.id]
        if not len(examples) or not len(vectors):
            return
        distances = nearest_distances(np.asarray(vectors, np.float32), examples, metric)
        unlike = distances > threshold
        if unlike.any():
            raise UnlikeFaces(person.name, int(unlike.sum()), len(distances),
                              float(distances[unlike].min()), float(threshold))

    return check

