"""The analysis notebooks (notebooks/*.ipynb): kept in git without outputs, and each one runs
headless on a small LFW subset and draws its plots. The executed copy goes to a temporary
folder; the repository's notebooks are never written."""

from __future__ import annotations

import ast
import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

# Per notebook: the environment for a small subset (each runs in well under a minute on the
# 2-core CI machine) and how many figures it draws with that subset.
SMALL_RUNS: dict[str, tuple[dict[str, str], int]] = {
    "lfw_analysis": (
        {"FACELIVE_NB_PAIRS": "4", "FACELIVE_NB_PEOPLE": "4", "FACELIVE_NB_PROBES": "2",
         "FACELIVE_NB_REPEATS": "2"},
        7,
    ),
    "gallery_explorer": ({"FACELIVE_NB_PEOPLE": "5", "FACELIVE_NB_IMAGES": "4"}, 3),
}


def test_every_notebook_has_a_small_run() -> None:
    assert NOTEBOOKS, "no notebooks found"
    assert {nb.stem for nb in NOTEBOOKS} == set(SMALL_RUNS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    # Outputs hold pictures of faces and machine-specific numbers, and make every run a diff.
    # To strip: jupyter nbconvert --clear-output --inplace notebooks/*.ipynb
    notebook = json.loads(path.read_text())
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [], f"{path.name} cell {index} has outputs"
        assert cell.get("execution_count") is None, f"{path.name} cell {index} was run"
    assert "widgets" not in notebook.get("metadata", {}), f"{path.name} keeps widget state"


# A notebook is a program written against the public API: `import facelive` and its names,
# beside the standard library and the plotting / statistics packages every reader has.
NOTEBOOK_IMPORTS = {"facelive", "numpy", "matplotlib", "sklearn"}


def notebook_imports(source: str) -> set[str]:
    """The modules a notebook's code imports (`from a.b import c` -> "a.b"), magics skipped."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
    found: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_import_check_sees_a_private_module() -> None:
    assert notebook_imports("%matplotlib inline\nimport facelive\nfrom facelive.x import y\n"
                            "import cv2") == {"facelive", "facelive.x", "cv2"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_imports_only_the_public_api(path: Path) -> None:
    notebook = json.loads(path.read_text())
    source = "\n".join("".join(c["source"]) for c in notebook["cells"]
                       if c["cell_type"] == "code")
    imported = notebook_imports(source)
    assert "facelive" in imported
    private = sorted(m for m in imported if m.startswith("facelive."))
    assert not private, f"{path.name} imports facelive's modules: {private}"
    other = sorted(m for m in imported if m.split(".")[0] not in NOTEBOOK_IMPORTS
                   and m.split(".")[0] not in sys.stdlib_module_names)
    assert not other, f"{path.name} imports {other}"


def _png_outputs(notebook: object) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells  # type: ignore[attr-defined]
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL_RUNS))
def test_notebook_runs_headless(
    name: str,
    test_data: Path,
    lfw_dir: Path,
    models_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nbformat
    from nbclient import NotebookClient

    source = NOTEBOOK_DIR / f"{name}.ipynb"
    before = source.read_bytes()
    env, figures_drawn = SMALL_RUNS[name]
    # The kernel inherits this process's environment.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FACELIVE_TEST_DATA", str(test_data))
    monkeypatch.setenv("FACELIVE_MODELS", str(models_dir))
    monkeypatch.setenv("FACELIVE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FACELIVE_NB_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # Agg would draw nothing into the cells
    monkeypatch.delenv("FACELIVE_EMBEDDER", raising=False)

    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    started = time.monotonic()
    try:
        client.execute()
    finally:
        nbformat.write(notebook, tmp_path / f"{name}.executed.ipynb")  # to look at on failure
    elapsed = time.monotonic() - started

    assert _png_outputs(notebook) == figures_drawn, f"ran in {elapsed:.0f} s"
    saved = sorted((tmp_path / "figures").glob("*.png"))
    assert len(saved) == figures_drawn, [p.name for p in saved]
    assert source.read_bytes() == before
