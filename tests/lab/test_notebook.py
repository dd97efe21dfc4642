"""The example notebook (docs/examples/campaign.ipynb) runs from top to bottom in a Jupyter
kernel, on a private copy of the emulated station (its own run lock and bench), into a
temporary directory: the documentation cannot fall behind the API."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "examples" / "campaign.ipynb"
sys.path.insert(0, str(ROOT / "tests" / "reliability"))
import run_helpers  # noqa: E402


def private_station(directory: Path) -> Path:
    """The emulated station with its own run lock and in-process bench."""
    return run_helpers.private_station(directory, name="emulated.yaml")


def text_of(cell) -> str:
    return "".join(output.get("text", "") + "".join(output.get("data", {}).get("text/plain", ""))
                   for output in cell.get("outputs", []))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_example_notebook_runs_on_the_emulated_station(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1, "the notebook's first code cell, tagged `parameters`, names STATION and OUT"
    assert "stations/emulated.yaml" in parameters[0].source      # as a reader runs it
    parameters[0].source = (f"from pathlib import Path\nSTATION = Path({str(private_station(tmp_path))!r})\n"
                            f"OUT = Path({str(tmp_path / 'out')!r})\n")

    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # raises on any error

    campaign = next(cell for cell in notebook.cells if "api.run_campaign(" in cell.source)
    assert text_of(campaign).count(" completed ") == 7 and "report:" in text_of(campaign)
    assert any("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))
    compared = next(cell for cell in notebook.cells if "api.compare_runs(" in cell.source)
    assert "switching_current_mean_a" in text_of(compared) and "parameters that differ: {}" in text_of(compared)
    exported = next(cell for cell in notebook.cells if "api.export_qcodes(" in cell.source)
    assert "ExportedTable(table='iv_curve'" in text_of(exported)
    assert len(list((tmp_path / "out" / "campaign").glob("*.h5"))) == 7
