"""notebooks/quickstart.ipynb runs top to bottom, and is stored with its outputs."""

import pathlib

import nbformat
import pytest

NOTEBOOK = pathlib.Path(__file__).parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_is_stored_with_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs for c in code[1:])  # the imports cell prints nothing
    assert not any(o.output_type == "error" for c in code for o in c.outputs)


def test_quickstart_runs():
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()  # raises on error
    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "2 FLOPs = 1 MAC" in outputs
    assert "FlopsCallback: forward" in outputs
