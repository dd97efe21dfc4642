"""A run's tables as QCoDeS datasets, so a QCoDeS lab keeps its database, plottr and its habits.

Each table of the run becomes one dataset, named after the table, in the experiment named after
the procedure (the sample: the chip's name); created if missing, reused if present. The
table's axis column (the x its NXdata names) is the independent parameter and every other
column depends on it, so plottr plots the table's signal against its axis at once. Units are
the archive's ("1", dimensionless, becomes QCoDeS's ""). The dataset's metadata says where it
came from: nwlab_run_id, nwlab_procedure, nwlab_table, nwlab_status, nwlab_started_at,
nwlab_archive, the run's parameters as JSON ({name: [value, units]}) and its scalar results
with their uncertainties (lab.app.api) as JSON ({name: {value, uncertainty, low, high, level,
method, spread, units}}, null for none).

The database is opened by its path (qcodes.dataset.sqlite.database.connect creates it with
QCoDeS's schema if missing), never through QCoDeS's configured default: exporting does not
change which database the rest of the session writes to.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.app.api import Run, open_run


class QcodesExportError(ValueError):
    """A run whose tables cannot be exported (no such table, nothing to export)."""


@dataclass(frozen=True)
class ExportedTable:
    table: str
    guid: str              # qcodes.dataset.load_by_guid(guid, conn=...)
    captured_run_id: int   # qcodes.dataset.load_by_run_spec(captured_run_id=..., conn=...)
    rows: int
    db: Path


def qcodes_unit(units: str) -> str:
    """The archive's unit as QCoDeS shows it: dimensionless "1" is no unit."""
    return "" if units == "1" else units


def export_run_tables(path: str | Path, db: str | Path, *, tables: Sequence[str] | None = None,
                      experiment: str | None = None, sample: str | None = None) -> list[ExportedTable]:
    """Export the tables of the run file `path` (all, or those named) into the QCoDeS database
    `db`; returns one ExportedTable per dataset written. Raises RunFileError for an unreadable
    run and QcodesExportError for a table the run does not have or a run without tables."""
    from qcodes.dataset import load_or_create_experiment
    from qcodes.dataset.sqlite.database import connect

    run = open_run(path)
    names = list(run.tables) if tables is None else list(tables)
    missing = [name for name in names if name not in run.tables]
    if missing:
        raise QcodesExportError(f"{run.path}: no table {missing[0]!r}; the run has: "
                                f"{', '.join(run.tables) or 'no tables'}")
    if not names:
        raise QcodesExportError(f"{run.path}: {run.procedure} archived no tables; nothing to export")
    db = Path(db)
    conn = connect(str(db))
    try:
        exp = load_or_create_experiment(experiment or run.procedure, sample_name=sample or _chip_name(run),
                                        conn=conn)
        return [_export_table(run, name, exp, db) for name in names]
    finally:
        conn.close()


def _export_table(run: Run, name: str, exp, db: Path) -> ExportedTable:
    from qcodes.dataset import Measurement

    columns = run.tables[name]
    units = columns.attrs["units"]
    axis = columns.attrs["axis"] if columns.attrs.get("axis") in columns else columns.columns[0]
    measurement = Measurement(exp=exp, name=name)
    measurement.register_custom_parameter(axis, label=axis, unit=qcodes_unit(units.get(axis, "")))
    for column in columns:
        if column != axis:
            measurement.register_custom_parameter(column, label=column, unit=qcodes_unit(units.get(column, "")),
                                                  setpoints=(axis,))
    rows = len(columns[axis])
    with contextlib.redirect_stdout(io.StringIO()), measurement.run() as saver:   # QCoDeS prints the run id
        if rows:   # a numeric parameter given arrays is stored one row per element
            saver.add_result(*((column, values.to_numpy()) for column, values in columns.items()))
        dataset = saver.dataset
    for tag, value in _metadata(run, name).items():
        dataset.add_metadata(tag, value)
    return ExportedTable(name, dataset.guid, dataset.captured_run_id, rows, db)


def _chip_name(run: Run) -> str:
    from contracts.files.yaml12 import parse_yaml

    try:
        tree = parse_yaml(run.chip_text, Path("<archived chip file>"), ValueError) if run.chip_text else {}
    except ValueError:
        tree = {}
    name = tree.get("name") if isinstance(tree, dict) else None
    return str(name) if name else "unknown chip"


def _metadata(run: Run, table: str) -> dict[str, str]:
    def plain(value):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            return str(value)
        listed = array.tolist()
        return None if isinstance(listed, float) and not np.isfinite(listed) else listed   # JSON has no NaN

    columns = ("value", "uncertainty", "low", "high", "level", "method", "spread")
    results = {name: {column: plain(row[column]) for column in columns} | {"units": row["units"]}
               for name, row in run.results.iterrows()}
    return {
        "nwlab_run_id": run.run_id, "nwlab_procedure": run.procedure, "nwlab_table": table,
        "nwlab_status": run.status, "nwlab_started_at": run.started_at, "nwlab_archive": str(run.path.resolve()),
        "nwlab_parameters": json.dumps({name: [plain(row["value"]), row["units"]]
                                        for name, row in run.parameters.iterrows()}),
        "nwlab_results": json.dumps(results),
    }
