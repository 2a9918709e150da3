"""Data sets laid out one folder per person (LFW's layout): ROOT/<Person_Name>/<images>.

The split is the one of facenet's `classifier.py --use_split_dataset`, made deterministic:
classes with fewer than `min_images` images are dropped; of the others, the first
`train_images` files (sorted by name) train and the rest test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facelive.tools.errors import ToolError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass(frozen=True)
class ImageClass:
    """One person: `folder` is the directory name ("Ariel_Sharon"), `name` how it is shown
    ("Ariel Sharon": underscores read as spaces, as in facenet and `enroll --from-dir`)."""

    folder: str
    paths: tuple[Path, ...]

    @property
    def name(self) -> str:
        return self.folder.replace("_", " ")


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def list_dataset(root: Path) -> list[ImageClass]:
    """The classes under `root`, sorted by folder name, each with its images sorted by file
    name; folders without images are left out. ToolError if there is nothing to work on."""
    root = Path(root)
    if not root.is_dir():
        raise ToolError(f"{root}: not a directory")
    classes = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        paths = tuple(sorted(p for p in folder.iterdir() if is_image(p)))
        if paths:
            classes.append(ImageClass(folder.name, paths))
    if not classes:
        raise ToolError(f"{root}: no sub-folders with images (expected ROOT/<person>/<images>)")
    return classes


def split_dataset(
    classes: Sequence[ImageClass], min_images: int, train_images: int
) -> tuple[list[ImageClass], list[ImageClass]]:
    """(train, test): classes with >= min_images images, first train_images of each to train,
    the rest to test. ToolError when no class qualifies or a class would have no test image."""
    if train_images < 1 or min_images < 1:
        raise ToolError("--min-images-per-class and --train-images-per-class must be >= 1")
    if min_images <= train_images:
        raise ToolError(
            f"--min-images-per-class ({min_images}) must exceed --train-images-per-class "
            f"({train_images}) so that every class keeps test images"
        )
    kept = [c for c in classes if len(c.paths) >= min_images]
    if not kept:
        raise ToolError(f"no class has {min_images} or more images")
    train = [ImageClass(c.folder, c.paths[:train_images]) for c in kept]
    test = [ImageClass(c.folder, c.paths[train_images:]) for c in kept]
    return train, test


def expand_inputs(inputs: Iterable[Path]) -> list[Path]:
    """Image files named directly, plus every image under named folders (recursively, sorted).
    ToolError for a path that does not exist or when no image is found."""
    files: list[Path] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if is_image(p)))
        elif item.is_file():
            files.append(item)
        else:
            raise ToolError(f"{item}: no such file or directory")
    if not files:
        raise ToolError("no images found in the given paths")
    return list(dict.fromkeys(files))
