"""Reader for dlib's serialisation of the face-recognition ResNet
(`dlib_face_recognition_resnet_model_v1.dat`), with no dependency on dlib: read_dlib_resnet.
The byte format is described in dlib_serialize.py, the expected network in
dlib_architecture.py, the layer types it returns in dlib_layers.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facelive.models.dlib_architecture import check_structure, check_weights
from facelive.models.dlib_layers import (
    INPUT_SCALE,
    INPUT_SIZE,
    DlibFormatError,
    DlibResNetWeights,
)
from facelive.models.dlib_serialize import parse_network

__all__ = ["DlibFormatError", "DlibResNetWeights", "read_dlib_resnet"]

# The real file is 22.5 MB; a bound keeps a wrong path (a video, a disk image) from being
# read into memory whole.
MAX_FILE_BYTES = 128 << 20


def read_dlib_resnet(path: Path) -> DlibResNetWeights:
    """Read and verify `dlib_face_recognition_resnet_model_v1.dat`.

    Raises DlibFormatError (a ValueError) naming the problem and byte offset when the file is
    truncated, corrupt, or a different network; OSError when it cannot be read.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise DlibFormatError(f"{path}: empty file, not a dlib model")
    if size > MAX_FILE_BYTES:
        raise DlibFormatError(f"{path}: {size} bytes is too large for the dlib face ResNet")
    try:
        parsed = parse_network(path.read_bytes())
        layers = check_structure(parsed)
        check_weights(layers)
    except DlibFormatError as err:
        raise DlibFormatError(f"{path}: not a valid dlib face-recognition ResNet: {err}") from None
    if parsed.input_size != (INPUT_SIZE, INPUT_SIZE):
        raise DlibFormatError(f"{path}: input size {parsed.input_size}, expected 150x150")
    return DlibResNetWeights(
        layers=layers,
        input_mean=np.asarray(parsed.input_mean, dtype=np.float32),
        input_scale=INPUT_SCALE,
        input_size=parsed.input_size,
        loss_margin=parsed.margin,
        loss_dist_thresh=parsed.dist_thresh,
    )
