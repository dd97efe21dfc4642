"""nwlab from Python: the import a notebook or a script uses (docs/python-api.md).

    from lab.app import api

    outcome = api.run_campaign("stations/emulated.yaml", "runs/")      # every procedure, then the report
    outcome = api.run_procedure("iv_sweep", "stations/emulated.yaml", "runs/", switching_events=200)
    run = api.open_run(outcome.archive_path)    # parameters, results, tables (pandas), traces (xarray)
    api.list_runs("runs/")                      # one row per run file (pandas)
    api.compare_runs(path_a, path_b)            # results side by side, the difference in σ (pandas)
    api.export_qcodes(path, "experiments.db")   # the run's tables as QCoDeS datasets

The runs go through the same code as `nwlab run` and `nwlab campaign` (the same checks before
any instrument is touched, the same archive and report); the reading goes through the report's
reader (lab/app/report/runs.py), so a notebook sees what the report sees.

A result's uncertainty is the one archived with it (an interval at a named confidence level, the
method that computed it and, where the method gives one, the standard uncertainty); results of
older runs have only the companions their names imply: the standard uncertainty of `x_u` or
`x_mean_u` is `x_stderr_u`, and its spread (one σ of the distribution) is `x_std_u`. A result
with neither has no uncertainty (NaN), and its difference in σ between two runs is NaN too.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lab.app.report.runs import Quantity, RunData, load_run

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from lab.app.campaign import CampaignOutcome
    from lab.app.qcodes_export import ExportedTable
    from lab.execution.runner import RunOutcome

__all__ = ["Run", "compare_runs", "export_qcodes", "list_runs", "open_run", "run_campaign", "run_procedure"]


# --- running ---------------------------------------------------------------------------------

def run_campaign(station: str | Path, out_dir: str | Path, *, only: Sequence[str] | None = None,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 show_progress: bool = False, **options: Any) -> CampaignOutcome:
    """The characterization campaign (or its `only` procedures) into `out_dir`, then its report:
    `nwlab campaign`. `overrides` maps a procedure to parameter values in SI units
    ({"iv_sweep": {"switching_events": 200}}); they win over the values handed on between
    procedures. Other keywords are the campaign's own (lab.app.campaign.run_campaign), e.g.
    `resume=True` for `--resume`. Returns the CampaignOutcome (`.outcomes[name].archive_path`,
    `.report_path`)."""
    from lab.app.campaign import run_campaign as campaign

    return campaign(station, out_dir, only=only, overrides=overrides, show_progress=show_progress, **options)


def run_procedure(name: str, station: str | Path, out_dir: str | Path, *, show_progress: bool = False,
                  **parameters: Any) -> RunOutcome:
    """One procedure with its parameters (SI units) into `out_dir`: `nwlab run NAME --set ...`,
    the station's `procedure_defaults` under them. Returns the RunOutcome (`.exit_status`,
    `.archive_path`, `.results`)."""
    from lab.app.campaign import selected
    from lab.app.run_cli import build_procedure, run_procedure as run_one
    from lab.execution.station_checks import load_station

    loaded = load_station(station)
    procedure = build_procedure(selected([name])[0], loaded, dict(parameters))
    return run_one(procedure, loaded, out_dir, show_progress=show_progress)


# --- reading ---------------------------------------------------------------------------------

@dataclass
class Run:
    """One archived run, read completely into memory (the file is closed).

    `parameters`: DataFrame indexed by name, columns `value`, `units`, `resolved` (the value the
    plan chose for an automatic parameter left at 0; NaN where none was archived).
    `results`: the numeric scalar results, indexed by name, columns `value`, `uncertainty`
    (standard uncertainty: the archived one, else `x_stderr_u`), `low`, `high` (the archived
    interval), `level` (its confidence level, 0.95 for 95 %), `method` (how it was computed),
    `spread` (σ of the distribution, from `x_std_u`), `units`; the companions themselves are not
    repeated as rows. NaN / "" where a result has none.
    `notes`: the text results (sources, statuses).
    `arrays`: the array results as an xarray Dataset on their axes (units in `.attrs`); an array
    with an interval has `x_low` and `x_high` beside it (level and method in their `.attrs`).
    `tables`: one DataFrame per table, its units in `.attrs["units"]` (column -> unit) and the
    columns a viewer plots in `.attrs["axis"]` and `.attrs["signal"]`.
    `traces`: the captured traces as an xarray Dataset, one variable per unit (voltage (trace,
    channel, time), current (trace, current_channel, time)) whose channel coordinates are the
    channel names (`traces.voltage.sel(channel="m")`), with the per-trace columns; or None.
    """
    path: Path
    run_id: str
    procedure: str
    status: str
    message: str
    started_at: str
    ended_at: str
    software_version: str
    bench: str
    emulator_seed: int | None
    parameters: pd.DataFrame
    results: pd.DataFrame
    notes: dict[str, str]
    arrays: xr.Dataset
    tables: dict[str, pd.DataFrame]
    traces: xr.Dataset | None
    station_text: str = ""
    chip_text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        traces = "none" if self.traces is None else ", ".join(
            f"{name} {' x '.join(map(str, var.shape))} ({', '.join(map(str, var.dims))})"
            for name, var in self.traces.data_vars.items() if var.ndim == 3)
        tables = ", ".join(f"{name} ({len(df)} rows)" for name, df in self.tables.items()) or "none"
        return (f"<Run {self.run_id} ({self.procedure}): {self.status}; {len(self.parameters)} parameters, "
                f"{len(self.results)} results, {len(self.arrays.data_vars)} arrays; tables: {tables}; "
                f"traces: {traces}>")


def open_run(path: str | Path) -> Run:
    """Read a run file (`.h5`) into a Run: parameters, results with units and uncertainties,
    array results, tables and traces in one call. Raises RunFileError (a ValueError) if the file
    is damaged, unfinished (`nwlab archive recover` first) or not a run file.

    Everything in the Run is the caller's own copy (the report's reader keeps the runs it read
    last, which must not change under it)."""
    data = load_run(path)
    results, notes = _results_frame(data.results)
    return Run(
        path=data.path, run_id=data.run_id, procedure=data.procedure, status=data.status, message=data.message,
        started_at=data.started_at, ended_at=data.ended_at, software_version=data.software_version,
        bench=data.bench, emulator_seed=data.emulator_seed,
        parameters=_parameters_frame(data.parameters, data.parameters_resolved), results=results, notes=notes,
        arrays=_arrays_dataset(data.results), tables=_tables(data),
        traces=_named_channels(data.traces) if data.traces is not None else None,
        station_text=data.station_text, chip_text=data.chip_text, metadata=copy.deepcopy(data.metadata),
    )


def _named_channels(traces: xr.Dataset) -> xr.Dataset:
    """A copy of the traces whose channel coordinates are the channel names, so a channel is
    `traces.voltage.sel(channel="m")` (the file keeps names beside an index: `channel_name`)."""
    named = traces.copy(deep=True)
    for variable in [v for v in named.data_vars if str(v).endswith("_name")]:
        dim = str(variable)[: -len("_name")]
        if named[variable].dims == (dim,):
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in named[variable].values]
            named = named.drop_vars(variable).assign_coords({dim: (dim, names, named[dim].attrs)})
    return named


def _companion(name: str, word: str, names) -> str | None:
    """The result holding the `word` ("std", "stderr") of `name`: x_mean_a → x_<word>_a, x_j → x_<word>_j."""
    stem, _, suffix = name.rpartition("_")
    for candidate in (name.replace("_mean_", f"_{word}_"), f"{stem}_{word}_{suffix}"):
        if candidate != name and candidate in names:
            return candidate
    return None


def _parameters_frame(parameters: Mapping[str, Quantity],
                      resolved: Mapping[str, Quantity] | None = None) -> pd.DataFrame:
    import pandas as pd

    resolved = resolved or {}
    frame = pd.DataFrame({"value": pd.Series({n: np.array(q.value) if isinstance(q.value, np.ndarray) else q.value
                                              for n, q in parameters.items()}, dtype=object),
                          "units": pd.Series({n: q.units for n, q in parameters.items()}, dtype=object),
                          "resolved": pd.Series({n: float(resolved[n].value) if n in resolved else np.nan
                                                 for n in parameters}, dtype=float)})
    frame.index.name = "parameter"
    return frame


def _results_frame(results: Mapping[str, Quantity]) -> tuple[pd.DataFrame, dict[str, str]]:
    import pandas as pd

    scalars = {n: q for n, q in results.items() if q.is_scalar}
    companions = {c for n in scalars for w in ("std", "stderr") if (c := _companion(n, w, scalars))}
    rows = {}
    for name, quantity in scalars.items():
        if name in companions:
            continue
        found = {w: _companion(name, w, scalars) for w in ("stderr", "std")}
        interval = quantity.uncertainty
        standard = float(interval.standard) if interval is not None else math.nan
        if math.isnan(standard) and found["stderr"]:
            standard = scalars[found["stderr"]].scalar()
        rows[name] = {"value": quantity.scalar(), "uncertainty": standard,
                      "low": float(interval.low) if interval is not None else math.nan,
                      "high": float(interval.high) if interval is not None else math.nan,
                      "level": interval.level if interval is not None else math.nan,
                      "method": interval.method if interval is not None else (
                          f"exact ({quantity.exact})" if quantity.exact else ""),
                      "spread": scalars[found["std"]].scalar() if found["std"] else math.nan,
                      "units": quantity.units}
    columns = ["value", "uncertainty", "low", "high", "level", "method", "spread", "units"]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    frame = frame.astype({name: float for name in ("value", "uncertainty", "low", "high", "level", "spread")})
    frame.index.name = "result"
    return frame, {n: str(q.value) for n, q in results.items() if q.is_text}


def _arrays_dataset(results: Mapping[str, Quantity]) -> xr.Dataset:
    import xarray as xr

    variables, coords = {}, {}
    for name, quantity in results.items():
        if quantity.is_text or quantity.is_scalar:
            continue
        values = np.asarray(quantity.value)
        dims = [quantity.axis_name or f"{name}_index"] + [f"{name}_dim{k}" for k in range(1, values.ndim)]
        if quantity.axis_name:
            coords[quantity.axis_name] = xr.Variable(quantity.axis_name, np.array(quantity.axis_values),
                                                     {"units": quantity.axis_units})
        variables[name] = xr.Variable(dims, values.copy(), {"units": quantity.units})
        interval = quantity.uncertainty
        if interval is not None:    # its interval beside it, named as a viewer looks for it
            attrs = {"units": quantity.units, "confidence_level": interval.level, "uncertainty_method": interval.method}
            variables[f"{name}_low"] = xr.Variable(dims, np.array(interval.low, dtype=float), attrs)
            variables[f"{name}_high"] = xr.Variable(dims, np.array(interval.high, dtype=float), attrs)
    return xr.Dataset(variables, coords=coords)


def _tables(data: RunData) -> dict[str, pd.DataFrame]:
    import pandas as pd

    roles = _table_roles(data.path, list(data.tables))
    tables = {}
    for name, columns in data.tables.items():
        frame = pd.DataFrame({column: np.array(values) for column, values in columns.items()})
        frame.index.name = "row"
        axis, signal = roles.get(name, (None, None))
        frame.attrs.update(units=dict(data.table_units[name]), axis=axis, signal=signal)
        tables[name] = frame
    return tables


def _table_roles(path: Path, names: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
    """(axis, signal) of each table: the columns its NXdata group names for a viewer's x and y."""
    import xarray as xr

    if not names:
        return {}
    roles = {}
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        for name in names:
            attrs = tree["entry"][name].attrs
            axes = np.atleast_1d(attrs.get("axes", []))
            axis = str(axes[0]) if axes.size and str(axes[0]) != "." else None
            signal = attrs.get("signal")
            roles[name] = (axis, str(signal) if signal is not None else None)
    return roles


def list_runs(directory: str | Path) -> pd.DataFrame:
    """One row per run file in `directory` (finished `.h5` and unfinished `.h5.partial`), in name
    (start) order: run_id, procedure, status, started_at, n_traces, size_mb, path, problem (why
    a file could not be read, if it could not)."""
    import pandas as pd

    from lab.archive.layout import ArchiveError
    from lab.archive.reader import run_files, summarize

    rows = []
    for path in run_files(directory):
        try:
            s = summarize(path)
        except ArchiveError as error:
            rows.append({"run_id": "", "procedure": "", "status": "unreadable", "started_at": "",
                         "n_traces": 0, "size_mb": path.stat().st_size / 1e6, "path": path, "problem": str(error)})
            continue
        rows.append({"run_id": s.run_id, "procedure": s.procedure, "status": s.status, "started_at": s.start_time,
                     "n_traces": s.n_traces, "size_mb": s.size_bytes / 1e6, "path": path, "problem": ""})
    return pd.DataFrame(rows, columns=["run_id", "procedure", "status", "started_at", "n_traces", "size_mb",
                                       "path", "problem"])


# --- comparing -------------------------------------------------------------------------------

def compare_runs(a: str | Path | Run, b: str | Path | Run) -> pd.DataFrame:
    """The numeric scalar results of two runs side by side, indexed by result (every result of
    either run): units, a, a_uncertainty, b, b_uncertainty, difference (b − a) and
    difference_sigma, the difference over the combined standard uncertainty
    sqrt(u_a² + u_b²) (NaN where neither run has one). A result archived with an interval but no
    standard uncertainty counts its half-width over the normal quantile of its level. `.attrs` holds both runs' ids and
    procedures, and the parameters that differ (name -> (a, b, units))."""
    import pandas as pd

    run_a = a if isinstance(a, Run) else open_run(a)
    run_b = b if isinstance(b, Run) else open_run(b)
    names = list(run_a.results.index) + [n for n in run_b.results.index if n not in run_a.results.index]
    ra, rb = run_a.results.reindex(names), run_b.results.reindex(names)
    frame = pd.DataFrame({"units": ra["units"].fillna(rb["units"]), "a": ra["value"],
                          "a_uncertainty": _standard_uncertainty(ra), "b": rb["value"],
                          "b_uncertainty": _standard_uncertainty(rb)}, index=pd.Index(names, name="result"))
    frame["difference"] = frame["b"] - frame["a"]
    combined = np.hypot(frame["a_uncertainty"].fillna(0.0), frame["b_uncertainty"].fillna(0.0))
    has_uncertainty = frame["a_uncertainty"].notna() | frame["b_uncertainty"].notna()
    frame["difference_sigma"] = (frame["difference"] / combined.where(has_uncertainty & (combined > 0)))
    frame.attrs.update(a=run_a.run_id, b=run_b.run_id, a_procedure=run_a.procedure, b_procedure=run_b.procedure,
                       parameters_differing=_differing_parameters(run_a.parameters, run_b.parameters))
    return frame


def _standard_uncertainty(results: pd.DataFrame) -> pd.Series:
    """The archived standard uncertainty; where a method gives only an interval (a Wilson or a
    bootstrap interval), its half-width over the normal quantile of its level."""
    from scipy import stats

    half_width = (results["high"] - results["low"]) / 2
    return results["uncertainty"].fillna(half_width / stats.norm.ppf(0.5 + results["level"] / 2))


def _differing_parameters(pa: pd.DataFrame, pb: pd.DataFrame) -> dict[str, tuple[Any, Any, str]]:
    differing = {}
    for name in list(pa.index) + [n for n in pb.index if n not in pa.index]:
        va = pa["value"].get(name)
        vb = pb["value"].get(name)
        same = va is not None and vb is not None and np.shape(va) == np.shape(vb) and bool(np.all(
            np.asarray(va) == np.asarray(vb)))
        if not same:
            units = pa["units"].get(name) if name in pa.index else pb["units"].get(name)
            differing[name] = (va, vb, str(units or ""))
    return differing


# --- exporting -------------------------------------------------------------------------------

def export_qcodes(path: str | Path, db: str | Path, *, tables: Sequence[str] | None = None,
                  experiment: str | None = None, sample: str | None = None) -> list[ExportedTable]:
    """Each table of a run (or the named `tables`) as one QCoDeS dataset in the database `db`
    (created if missing), for plottr and QCoDeS's own tools: lab.app.qcodes_export."""
    from lab.app.qcodes_export import export_run_tables

    return export_run_tables(path, db, tables=tables, experiment=experiment, sample=sample)
