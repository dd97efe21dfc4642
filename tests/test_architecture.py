"""Imports point one way (DESIGN.md, 'Layers and data flow'): checked by import-linter."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_no_benchmark_script_stands_in_for_a_module_something_imports():
    """A script runs with its own folder first on sys.path, so benchmarks/coverage.py once stood in
    for the `coverage` package numba looks for at import: every benchmark paid for importing the
    coverage benchmark's own dependencies (~0.7 s) before its first line. Here the project's and
    the libraries' imports run as a benchmark's would, and none may ask for a name a script of
    benchmarks/ would answer."""
    benchmarks = ROOT / "benchmarks"
    stdlib_named = [p.name for p in benchmarks.glob("*.py") if p.stem in sys.stdlib_module_names]
    assert not stdlib_named, f"benchmark scripts named like a standard-library module: {stdlib_named}"
    # A finder ahead of the others notes every top-level import a script of benchmarks/ would answer.
    probe = (
        "import sys, pathlib, importlib.abc\n"
        "folder = pathlib.Path(sys.argv[1]); sys.path.insert(0, str(folder)); asked = []\n"
        "class Note(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if path is None and (folder / (name + '.py')).exists(): asked.append(name)\n"
        "sys.meta_path.insert(0, Note())\n"
        "import numba, scipy.stats, h5py, qcodes, pyvisa, dask.distributed\n"
        "import lab.app.campaign, sim_backend.emulator, validation.coverage\n"
        "print(' '.join(asked))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(benchmarks)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not result.stdout.split(), f"imports that a benchmark script would answer: {result.stdout.split()}"
