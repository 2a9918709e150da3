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


def test_fused_is_both_embedders_in_one_call(facenet_models_dir: Path, models_dir: Path,
                                            lfw_dir: Path) -> None:
    import dataclasses

    from facelive.models.store import choose_embedder
    from facelive.recognition.pipeline import FaceEngine
    from facelive.vision.embedder_choice import create_embedder
    from facelive.vision.facenet_embedders import CALIBRATION, FusedEmbedder, fused_vectors
    from facelive.vision.image import read_image

    settings = Settings(models_dir=facenet_models_dir, embedder="fused")
    assert choose_embedder("facenet", facenet_models_dir) == "facenet-2017"
    assert choose_embedder("fused", facenet_models_dir) == "fused"
    # auto takes fused where FaceNet is present (README: why), dlib-resnet where it is not.
    assert choose_embedder("auto", facenet_models_dir) == "fused"
    assert choose_embedder("auto", models_dir) == "dlib-resnet"
    fused = create_embedder(settings)
    assert isinstance(fused, FusedEmbedder) and fused.name == "fused" and fused.dim == 256
    engine = FaceEngine(dataclasses.replace(settings, embedder="dlib-resnet"))
    images = [read_image(p) for p in sorted((lfw_dir / "Aaron_Peirsol").iterdir())[:3]]
    dets = [engine.detect(im)[0] for im in images]
    chips = np.stack([fused.align(im, d) for im, d in zip(images, dets, strict=True)])
    got = fused.embed(chips)
    a = fused.dlib.embed(np.stack([fused.dlib.align(im, d) for im, d in zip(images, dets,
                                                                               strict=True)]))
    b = fused.facenet.embed(np.stack([fused.facenet.align(im, d)
                                      for im, d in zip(images, dets, strict=True)]))
    np.testing.assert_allclose(got, fused_vectors(a, b, fused.weight), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    pa, pb = fused.parts(got)
    np.testing.assert_allclose(pa, a, atol=1e-5)
    np.testing.assert_allclose(pb, b, atol=1e-5)
    # Faces are compared by the sum of the two networks' own distances, FaceNet's put on
    # dlib-resnet's scale; the shipped recipe is the calibrated one (not the fallback).
    metric = fused.metric
    assert metric.weight == 0.55 and fused.recipe in CALIBRATION and fused.verify_threshold > 0.4
    da = np.linalg.norm(a[:, None] - a[None], axis=2)
    db = np.linalg.norm(b[:, None] - b[None], axis=2)
    # Off the diagonal: a face's distance to itself is sqrt of float32 round-off (~3e-4).
    off = ~np.eye(len(got), dtype=bool)
    np.testing.assert_allclose(metric.pairwise(got, got)[off],
                               (0.55 * da + 0.45 * (0.4172 / 1.097) * db)[off], atol=1e-4)


def test_fused_small_faces_run_dlib_resnet_alone(facenet_models_dir: Path, lfw_dir: Path) -> None:
    """A face under SMALL_FACE_PX is embedded by fused's DlibHalf (issue 17): FaceNet's half
    of its vector is not computed (zero), and the in-graph KNN answers it with dlib-resnet's
    own distances to the stored fused examples, for real LFW faces and networks."""
    from facelive.recognition.knn import KnnIndex
    from facelive.recognition.pipeline import FaceEngine
    from facelive.vision.image import read_image

    engine = FaceEngine(Settings(models_dir=facenet_models_dir, embedder="fused"))
    fused = engine.embedder
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir() and len(list(p.iterdir())) >= 3)
    faces = [f for person in people[:12] for f in engine.primary_faces(
        [read_image(p) for p in sorted(person.iterdir())[:2]])]
    faces = [f for f in faces if f is not None]
    assert len(faces) >= 22
    chips = np.stack([f.chip for f in faces])
    stored = fused.embed(chips[::2])
    index = KnnIndex(fused.dim, k=3, metric=fused.metric)
    index.add(stored, np.arange(1, len(stored) + 1))
    half = fused.dlib_half()
    small = index.crop_classifier(half, query_scale=half.query_scale)
    vectors, result = small(chips[1::2], 0.6)
    np.testing.assert_array_equal(vectors[:, fused.dlib.dim:], 0.0)
    a = fused.parts(fused.embed(chips))[0]  # dlib-resnet's own vectors (the test above)
    own = np.linalg.norm(a[1::2, None] - a[None, ::2], axis=2)
    nearest = np.argsort(own, axis=1)[:, :3]
    np.testing.assert_array_equal(result.indices, nearest)
    np.testing.assert_allclose(result.distances, np.take_along_axis(own, nearest, 1), atol=1e-4)
    # The whole fused call answers otherwise (its distance is the two networks' sum).
    whole_classify = index.crop_classifier(fused)
    _, whole = whole_classify(chips[1::2], 0.6)
    assert not np.allclose(whole.distances, result.distances, atol=1e-3)
    # A batch of both sizes (the recogniser's one call per frame): each face answered by
    # its own path, in its place, with the rule it was judged by.
    from facelive.recognition.small_faces import SmallFaceRule, classify_faces

    queries = chips[1::2]
    sides = [30.0 if i % 3 == 0 else 90.0 for i in range(len(queries))]
    rule = SmallFaceRule("dlib-resnet", 0.6, 48.0)
    mixed, answer, rules = classify_faces(rule, whole_classify, small, queries, sides,
                                          ("fused", 0.5))
    is_small = np.array(sides) < 48
    np.testing.assert_allclose(answer.distances[is_small], result.distances[is_small], atol=1e-5)
    _, big = whole_classify(queries, 0.5)
    np.testing.assert_allclose(answer.distances[~is_small], big.distances[~is_small], atol=1e-5)
    np.testing.assert_array_equal(mixed[is_small, fused.dlib.dim:], 0.0)
    assert (np.abs(mixed[~is_small, fused.dlib.dim:]).sum(axis=1) > 0).all()
    assert rules == [("dlib-resnet", 0.6) if s else ("fused", 0.5) for s in is_small]
