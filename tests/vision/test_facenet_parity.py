"""Our Inception-ResNet-v1 against an independent Keras 3 rebuild of facenet_keras.h5 (from
the file's own model_config, keras_rebuild.py), same weights, on 200 real LFW face crops made
by our MTCNN and facenet's margin-32 crop; and FaceNet telling LFW pairs apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelive.settings import Settings
from facelive.vision.facenet_embedders import FACENET_2017, FaceNetEmbedder, prewhiten
from facelive.vision.facenet_weights import read_keras_h5

pytestmark = pytest.mark.slow
H5 = "facenet/20170512-110547/facenet_keras.h5"


@pytest.fixture(scope="module")
def crops(facenet_models_dir: Path, lfw_dir: Path) -> tuple[list[str], np.ndarray]:
    from facelive.recognition.pipeline import pick_primary
    from facelive.vision.align import facenet_crop
    from facelive.vision.image import read_image
    from facelive.vision.mtcnn import MTCNN

    detector = MTCNN.from_settings(Settings(models_dir=facenet_models_dir))
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir() and len(list(p.iterdir())) >= 2)
    files = [f for person in people[:100] for f in sorted(person.iterdir())[:2]]
    names, out = [], []
    for path in files:
        image = read_image(path)
        dets = detector.detect(image)
        index = pick_primary(dets, image.shape)
        if index is not None:
            names.append(path.parent.name)
            out.append(facenet_crop(image, dets[index].box))
    assert len(out) >= 195
    return names, np.stack(out)


def test_cosine_with_the_keras_rebuild(facenet_models_dir: Path, crops) -> None:
    from keras_rebuild import rebuild

    path = facenet_models_dir / H5
    model, count = rebuild(path)
    assert count == 490  # every weight array of the file, set by name
    _, chips = crops
    x = prewhiten(chips).numpy()
    assert x.dtype == np.float32
    theirs = model.predict(x, batch_size=25, verbose=0)
    ours = FaceNetEmbedder(read_keras_h5(path), FACENET_2017).embed(chips)
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine.min()


def test_same_people_are_closer(facenet_models_dir: Path, crops) -> None:
    names, chips = crops
    vectors = FaceNetEmbedder(read_keras_h5(facenet_models_dir / H5), FACENET_2017).embed(chips)
    labels = np.array(names)
    d = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    same = labels[:, None] == labels[None]
    off = ~np.eye(len(labels), dtype=bool)
    # At facenet's usual threshold (~1.1) most same-person pairs match, nearly no others do.
    assert (d[same & off] < 1.1).mean() > 0.9
    assert (d[~same] < 1.1).mean() < 0.01
