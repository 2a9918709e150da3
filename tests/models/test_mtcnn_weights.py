"""The two MTCNN weight file sets read to the same numbers, and bad files are refused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from facelive.models import store
from facelive.models.mtcnn_weights import (
    LAYOUT,
    NETS,
    load_mtcnn_weights,
    read_det_npy,
    read_pypi_lz4,
)


def _paths(models_dir: Path, model: str) -> list[Path]:
    paths = store.require(models_dir, model)
    assert [p.name for p in paths] == (
        ["det1.npy", "det2.npy", "det3.npy"]
        if model == "mtcnn"
        else ["pnet.lz4", "rnet.lz4", "onet.lz4"]
    )
    return paths


@pytest.fixture(scope="module")
def both(models_dir: Path):
    for model in ("mtcnn", "mtcnn-pypi"):
        if store.model_state(models_dir, model) != "present":
            pytest.skip(f"{model} weights not available offline")
    return read_det_npy(_paths(models_dir, "mtcnn")), read_pypi_lz4(
        _paths(models_dir, "mtcnn-pypi")
    )


def test_both_readers_give_identical_arrays_for_every_layer(both) -> None:
    npy, lz4 = both
    for net in NETS:
        assert set(npy[net]) == set(lz4[net]) == {layer for layer, _, _ in LAYOUT[net]}
        for layer, param, shape in LAYOUT[net]:
            a, b = npy[net][layer][param], lz4[net][layer][param]
            assert a.shape == b.shape == shape
            assert a.dtype == b.dtype == np.float32
            np.testing.assert_array_equal(a, b, err_msg=f"{net} {layer}/{param}")


def test_weights_are_not_trivial(both) -> None:
    npy, _ = both
    # A reader that returned zeros or one array for every layer would pass the equality test.
    assert np.abs(npy["onet"]["conv2"]["weights"]).mean() > 1e-3
    assert not np.array_equal(
        npy["pnet"]["conv2"]["weights"][0], npy["pnet"]["conv2"]["weights"][1]
    )


def test_load_prefers_det_npy_then_falls_back_to_pypi(models_dir: Path, tmp_path: Path) -> None:
    model, weights = load_mtcnn_weights(models_dir)
    assert model == "mtcnn" and set(weights) == set(NETS)
    only_pypi = tmp_path / "models"
    shutil.copytree(models_dir / "mtcnn-pypi", only_pypi / "mtcnn-pypi")
    model, fallback = load_mtcnn_weights(only_pypi)
    assert model == "mtcnn-pypi"
    np.testing.assert_array_equal(
        fallback["rnet"]["conv4"]["weights"], weights["rnet"]["conv4"]["weights"]
    )
    with pytest.raises(store.ModelMissingError):
        load_mtcnn_weights(tmp_path / "empty")


def _three(path: Path) -> list[Path]:
    return [path, path, path]


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_det_npy_is_a_value_error(models_dir: Path, tmp_path: Path, keep: float) -> None:
    data = (models_dir / "mtcnn" / "det2.npy").read_bytes()
    bad = tmp_path / "det2.npy"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="det2.npy"):
        read_det_npy([models_dir / "mtcnn" / "det1.npy", bad, models_dir / "mtcnn" / "det3.npy"])


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_lz4_is_a_value_error(models_dir: Path, tmp_path: Path, keep: float) -> None:
    data = (models_dir / "mtcnn-pypi" / "onet.lz4").read_bytes()
    bad = tmp_path / "onet.lz4"
    bad.write_bytes(data[: int(len(data) * keep)])
    paths = _paths(models_dir, "mtcnn-pypi")
    with pytest.raises(ValueError, match="onet.lz4"):
        read_pypi_lz4([paths[0], paths[1], bad])


def test_garbage_and_swapped_files_are_value_errors(models_dir: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match="garbage.npy: not a valid MTCNN weight file"):
        read_det_npy(_three(garbage))
    with pytest.raises(ValueError, match="garbage.npy: not a valid MTCNN weight file"):
        read_pypi_lz4(_three(garbage))
    # Valid files in the wrong order: every shape check has to catch it.
    det = _paths(models_dir, "mtcnn")
    with pytest.raises(ValueError, match="shape|has no"):
        read_det_npy([det[1], det[0], det[2]])
    pypi = _paths(models_dir, "mtcnn-pypi")
    with pytest.raises(ValueError, match="arrays|shape"):
        read_pypi_lz4([pypi[2], pypi[1], pypi[0]])


def test_a_layer_with_a_wrong_shape_is_named(models_dir: Path, tmp_path: Path) -> None:
    det1 = np.load(models_dir / "mtcnn" / "det1.npy", allow_pickle=True, encoding="latin1").item()
    det1["conv2"]["weights"] = det1["conv2"]["weights"][:, :, :, :8]
    bad = tmp_path / "det1.npy"
    np.save(bad, np.array(det1, dtype=object), allow_pickle=True)
    det = _paths(models_dir, "mtcnn")
    with pytest.raises(ValueError, match=r"pnet conv2/weights has shape \(3, 3, 10, 8\)"):
        read_det_npy([bad, det[1], det[2]])


class _RunsCode:
    """Unpickling this calls a function (a harmless one): what a hostile file would do."""

    def __reduce__(self):
        return (os.getpid, ())


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "det1.npy"
    np.save(hostile, np.array({"conv1": _RunsCode()}, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="refusing to load"):
        read_det_npy(_three(hostile))

    import joblib

    hostile_lz4 = tmp_path / "pnet.lz4"
    joblib.dump([_RunsCode()], hostile_lz4, compress="lz4")
    with pytest.raises(ValueError, match="refusing to load"):
        read_pypi_lz4(_three(hostile_lz4))
    nested = tmp_path / "rnet.lz4"
    joblib.dump([np.array([_RunsCode()], dtype=object)], nested, compress="lz4")
    with pytest.raises(ValueError, match="Python objects"):
        read_pypi_lz4(_three(nested))
