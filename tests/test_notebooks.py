"""The notebook tutorials (notebooks/*.ipynb) run top to bottom, and are committed without outputs.

Each notebook is executed with nbclient in a fresh kernel that runs this interpreter (a kernel
spec written to a temporary folder, so a ``python3`` kernel installed elsewhere on the machine
cannot stand in for it), in a temporary working directory, with ``KAPPS_NOTEBOOK_QUICK=1``
(the notebooks' small-data switch) and ``KAPPS_SHARED_DIR`` pointing at the shared folder of
real weights and photos. An error in any cell fails the test; every cell that draws a figure
must have produced a PNG.

Downloads are pointed at a closed local port (``KAPPS_WEIGHTS_MIRROR``), so the notebooks take
their offline path the same way on every machine, quickly, whether or not it has network access.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = [
    "01_pretrained_inference.ipynb",
    "02_sequential_vs_functional.ipynb",
    "03_fine_tune_your_images.ipynb",
    "04_training_at_scale.ipynb",
    "05_understanding_architectures.ipynb",
    "06_segmentation_unet.ipynb",
]
CELL_TIMEOUT = 600  # seconds per cell: generous, the machine running the tests may be busy
KERNEL_NAME = "kapps-notebook-test"
#: Calls in a code cell that draw a figure; such a cell must leave a PNG among its outputs.
PLOTTING_CALLS = ("plt.show()", "display(Image(")


def kernel_manager(folder: Path) -> KernelManager:
    """A kernel manager whose only kernel spec starts ``sys.executable`` (the interpreter running the tests)."""
    spec_dir = folder / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "kapps tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs,
                         connection_file=str(folder / "kernel-connection.json"))


def execute(name: str, tmp_path: Path, shared: Path) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (tmp_path / "tmp").mkdir()  # the notebooks' temporary folders land here, removed with tmp_path
    env = dict(os.environ, KAPPS_NOTEBOOK_QUICK="1", KAPPS_SHARED_DIR=str(shared),
               KAPPS_WEIGHTS_MIRROR="http://127.0.0.1:9/", PYTHONUNBUFFERED="1",
               TMPDIR=str(tmp_path / "tmp"))
    env.pop("MPLBACKEND", None)  # the notebooks draw inline (%matplotlib inline)
    km = kernel_manager(tmp_path)
    client = NotebookClient(notebook, km=km, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    try:
        client.execute(env=env)  # raises CellExecutionError, naming the cell, on the first error
    finally:  # nbclient leaves a kernel it was handed running (0.5-2.5 GB each, until the suite ends)
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return notebook, time.perf_counter() - start


def png_outputs(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for output in cell.get("outputs", [])
               if output.get("output_type") in ("display_data", "execute_result"))


def check_figures(notebook: nbformat.NotebookNode, name: str) -> None:
    drawing = [cell for cell in notebook.cells
               if cell.cell_type == "code" and any(call in cell.source for call in PLOTTING_CALLS)]
    assert drawing, f"{name}: no cell draws a figure"
    for cell in drawing:
        assert png_outputs(cell) > 0, f"{name}: this cell draws a figure but produced no PNG:\n{cell.source[:300]}"


def test_notebooks_are_committed_without_outputs():
    found = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert found == NOTEBOOKS, f"notebooks/ holds {found}; this test runs {NOTEBOOKS}"
    for name in NOTEBOOKS:
        notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata.get("kernelspec", {}).get("name") == "python3", name
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (
                    f"{name}, cell {index}: outputs must be stripped before committing")
        sources = "\n".join(cell.source for cell in notebook.cells)
        assert "KAPPS_NOTEBOOK_QUICK" in sources, f"{name} ignores the small-data switch"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name, tmp_path, shared):
    notebook, seconds = execute(name, tmp_path, shared)
    print(f"{name}: executed in {seconds:.0f} s")
    check_figures(notebook, name)


def test_fine_tune_notebook_without_the_shared_folder(tmp_path):
    """Without ../shared the fine-tuning notebook makes its synthetic two-class folder and still runs."""
    missing = tmp_path / "no_shared_folder"
    notebook, _ = execute("03_fine_tune_your_images.ipynb", tmp_path, missing)
    text = "\n".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "SYNTHETIC data set" in text and "RANDOM weights" in text
    assert "'disks'" in text and "'squares'" in text
    check_figures(notebook, "03_fine_tune_your_images.ipynb (no shared folder)")
