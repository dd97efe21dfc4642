"""The campaign report: `report.md` (and its PNG figures) written from the archived runs.

Everything in it is read back from the run files, so the report of a directory of runs can be
rebuilt at any time (`write_report(out_dir)`); what only the campaign knows — procedures it did
not run and why — comes in a `CampaignNotes`.

A directory may hold several runs of a procedure (a resumed campaign, a procedure rerun with
`--only`): the report has one section per procedure, showing its latest completed run (or, if
none completed, its latest run) in full and listing the others.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lab.app.report import fig_energy, fig_excitability, fig_iv
from lab.app.report.plots import Figure, format_value, prefix_for
from lab.app.report.runs import Quantity, RunData, archived_mapping, load_readable, load_run, load_runs

REPORT_NAME = "report.md"
FIGURES: dict[str, tuple[Callable[[RunData, Path], list[Figure]], ...]] = {
    "cooldown": (fig_iv.cooldown,),
    "iv_sweep": (fig_iv.iv_sweep,),
    "strength_duration": (fig_excitability.strength_duration,),
    "refractory": (fig_excitability.refractory,),
    "firing_rate": (fig_excitability.firing_rate,),
    "energy_per_spike": (fig_energy.spike_traces, fig_energy.energy_histogram),
    "efficiency": (fig_energy.efficiency,),
}
MAX_LISTED = 8        # array results with up to this many values are listed in full


@dataclass
class CampaignNotes:
    """What the campaign knows besides the archives."""
    station_path: str = ""
    command: str = ""                                              # how to reproduce it
    not_run: list[tuple[str, str]] = field(default_factory=list)   # (procedure, why)
    remarks: list[str] = field(default_factory=list)
    estimated_lab_time_s: float = math.nan
    wall_time_s: float = math.nan


def _spread_name(name: str, results: dict[str, Quantity]) -> str | None:
    """The result holding the spread of `name`: x_mean_a → x_std_a, x_j → x_std_j."""
    stem, _, suffix = name.rpartition("_")
    for candidate in (name.replace("_mean_", "_std_"), f"{stem}_std_{suffix}"):
        if candidate != name and candidate in results:
            return candidate
    return None


def _cell(quantity: Quantity) -> tuple[str, str]:
    """(value text, shown unit) for a numeric result."""
    if quantity.is_scalar:
        value = quantity.scalar()
        factor, unit = prefix_for([value], quantity.units)
        text = format_value(value, quantity.units)
        return (text[: -len(unit)].rstrip() if unit and text.endswith(unit) else text), unit
    values = np.asarray(quantity.value, dtype=float)
    factor, unit = prefix_for(values, quantity.units)
    listed = ", ".join("n/a" if not math.isfinite(v) else f"{v * factor:.4g}" for v in values[:MAX_LISTED])
    more = f", … ({values.size} values)" if values.size > MAX_LISTED else ""
    along = ""
    if quantity.axis_name:
        a_factor, a_unit = prefix_for(quantity.axis_values, quantity.axis_units)
        along = (f" at {quantity.axis_name} = " + ", ".join(f"{a * a_factor:.3g}" for a in
                 np.asarray(quantity.axis_values, float)[:MAX_LISTED]) + f" {a_unit}").rstrip()
    return f"[{listed}{more}]{along}", unit


def results_table(run: RunData) -> list[str]:
    spreads = {s for n in run.results if (s := _spread_name(n, run.results))}
    lines = ["| result | value | ± spread (σ) | unit | SI unit |", "|---|---|---|---|---|"]
    texts = []
    for name, quantity in run.results.items():
        if quantity.is_text:
            texts.append(f"- `{name}`: {quantity.value}")
            continue
        if name in spreads:
            continue
        value, unit = _cell(quantity)
        spread = ""
        if (spread_name := _spread_name(name, run.results)) is not None and run.results[spread_name].is_scalar:
            factor, _ = prefix_for([quantity.scalar()], quantity.units) if quantity.is_scalar else (1.0, "")
            s = run.results[spread_name].scalar()
            spread = f"{s * factor:.3g}" if math.isfinite(s) and quantity.is_scalar else ""
        lines.append(f"| `{name}` | {value} | {spread} | {unit} | {quantity.units} |")
    if len(lines) == 2:
        lines.append("| (no results) | | | | |")
    return lines + ([""] + texts if texts else [])


def _set_arguments(run: RunData) -> str:
    """`--set` options that reproduce the run's parameters where they differ from the defaults."""
    from procedures.catalog import CAMPAIGN

    procedure = {p.name: p for p in CAMPAIGN}.get(run.procedure)
    if procedure is None:
        return ""
    defaults = {f.name: f.default for f in dataclasses.fields(procedure.Parameters)}
    parts = []
    for name, quantity in run.parameters.items():
        value = quantity.value
        default = defaults.get(name)
        if isinstance(default, tuple):
            given, usual = np.atleast_1d(np.asarray(value, float)), np.asarray(default, float)
            if given.shape == usual.shape and np.allclose(given, usual):
                continue
            parts.append(f"--set {name}=" + ",".join(f"{v:.6g}" for v in np.atleast_1d(value)))
        elif default is not None and value != default:
            text = ("true" if value else "false") if isinstance(default, bool) else (
                f"{value:.6g}" if isinstance(value, float) else str(value))
            parts.append(f"--set {shlex.quote(f'{name}={text}')}")
    return " ".join(parts)


def header(runs: Sequence[RunData], notes: CampaignNotes) -> list[str]:
    first = runs[0] if runs else None
    station = archived_mapping(first.station_text if first else "")
    chip_name = archived_mapping(first.chip_text if first else "").get("name", "?")
    seeds = sorted({r.emulator_seed for r in runs if r.emulator_seed is not None})
    completed = sum(r.status == "completed" for r in runs)
    lines = [
        "# Characterization campaign report", "",
        f"- **Station:** {station.get('station', '?')} (`{notes.station_path or first.metadata.get('station', '?') if first else '?'}`)",
        f"- **Chip:** {chip_name} (chip file `{station.get('chip', '?')}`)",
        f"- **Bench:** {first.bench if first else '?'}"
        + (f"; emulator seed {', '.join(map(str, seeds))}" if seeds else ""),
        f"- **Software:** {', '.join(dict.fromkeys(r.software_version for r in runs)) or '?'}",
        f"- **Started:** {first.started_at if first else '-'}",
        f"- **Ended:** {max((r.ended_at for r in runs), default='-')}",
        f"- **Runs:** {completed} of {len(runs)} completed"
        + (f"; {len(notes.not_run)} procedure(s) not run" if notes.not_run else ""),
    ]
    if math.isfinite(notes.estimated_lab_time_s):
        lines.append(f"- **Lab time (estimated):** {notes.estimated_lab_time_s:.1f} s"
                     + (f"; wall time {notes.wall_time_s:.1f} s" if math.isfinite(notes.wall_time_s) else ""))
    if notes.command:
        lines.append(f"- **How to reproduce:** `{notes.command}`")
    return lines + [""]


def runs_table(runs: Sequence[RunData], notes: CampaignNotes, out_dir: Path) -> list[str]:
    lines = ["## Runs", "", "| procedure | exit status | archive | message |", "|---|---|---|---|"]
    for run in runs:
        message = run.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {run.procedure} | **{run.status}** | `{_relative(run.path, out_dir)}` | {message} |")
    for procedure, why in notes.not_run:
        lines.append(f"| {procedure} | **not run** | — | {why} |")
    return lines + [""] + [f"- {remark}" for remark in notes.remarks] + ([""] if notes.remarks else [])


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def by_procedure(runs: Sequence[RunData]) -> list[tuple[RunData, list[RunData]]]:
    """One entry per procedure, in campaign order (then any other, by first start): the run its
    section shows — the latest completed one, else the latest — and its other runs, newest first."""
    from procedures.catalog import CAMPAIGN

    order = [p.name for p in CAMPAIGN]
    groups: dict[str, list[RunData]] = {}
    for run in sorted(runs, key=lambda r: (r.started_at, r.run_id)):
        groups.setdefault(run.procedure, []).append(run)
    entries = []
    for name in sorted(groups, key=lambda n: (order.index(n) if n in order else len(order), groups[n][0].started_at)):
        newest_first = groups[name][::-1]
        shown = next((r for r in newest_first if r.status == "completed"), newest_first[0])
        entries.append((shown, [r for r in newest_first if r is not shown]))
    return entries


def other_runs(others: Sequence[RunData], out_dir: Path) -> list[str]:
    if not others:
        return []
    lines = [f"Other runs of {others[0].procedure} in this directory (newest first):", ""]
    for run in others:
        message = run.message.replace("\n", " ")
        lines.append(f"- **{run.status}**: `{_relative(run.path, out_dir)}`, {run.started_at} → {run.ended_at}"
                     + (f" — {message}" if message else ""))
    return lines + [""]


#: Beside a run's figures: which run file they were drawn from, and their titles and captions.
DRAWN_NAME = "figures.json"


def figures(run: RunData, run_figures: Path) -> list[Figure]:
    """The run's figures, drawn once: a finished run file does not change, so a report rewritten
    after every run of a campaign (or by a resumed one) draws only the runs it has not drawn yet.
    `figures.json` beside them names the run file (size, modification time) they came from."""
    try:
        stat = run.path.stat()
        source = {"archive": run.path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    except OSError:
        source = None
    drawn_path = run_figures / DRAWN_NAME
    try:
        drawn = json.loads(drawn_path.read_text())
        listed = [Figure(run_figures / f["file"], f["title"], f["caption"]) for f in drawn["figures"]]
        if source is not None and drawn["source"] == source and all(f.path.is_file() for f in listed):
            return listed
    except (OSError, ValueError, KeyError, TypeError):
        pass
    run_figures.mkdir(parents=True, exist_ok=True)
    if not run.with_data:            # read without its tables and traces: the figures need them
        run = load_run(run.path)
    made = [figure for draw in FIGURES.get(run.procedure, ()) for figure in draw(run, run_figures)]
    if source is not None:
        tmp = drawn_path.with_name(f".{DRAWN_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"source": source, "figures": [
            {"file": f.path.name, "title": f.title, "caption": f.caption} for f in made]}))
        tmp.replace(drawn_path)
    return made


def procedure_section(run: RunData, out_dir: Path, figure_dir: Path, others: Sequence[RunData] = ()) -> list[str]:
    lines = [f"## {run.procedure} — {run.status}", "",
             f"Run `{run.run_id}`, archive `{_relative(run.path, out_dir)}`, {run.started_at} → {run.ended_at}.", ""]
    if run.message:             # why it failed, or what a completed run met and dealt with
        lines += [f"> {run.message}", ""]
    lines += other_runs(others, out_dir)
    lines += results_table(run) + [""]
    run_figures = figure_dir / run.run_id       # two runs of one procedure keep their own figures
    for figure in figures(run, run_figures):
        lines += [f"### {figure.title}", "", f"![{figure.title}]({_relative(figure.path, out_dir)})", "",
                  figure.caption, ""]
    station = run.metadata.get("station", "STATION")
    lines += [f"Reproduce this run alone: `nwlab run {run.procedure} --station {station} --out DIR "
              f"{_set_arguments(run)}".rstrip() + "`", ""]
    return lines


def write_report(out_dir: str | Path, notes: CampaignNotes | None = None,
                 runs: Sequence[RunData | Path] | None = None) -> Path:
    """Write `out_dir/report.md` and `out_dir/figures/*.png` from the runs archived in out_dir
    (or from `runs`: loaded runs or run files). A run file that cannot be read is left out and
    named in the report. A directory that cannot take the report (full disk, read-only) gives
    ArchiveWriteError naming the path and the problem."""
    from lab.archive.output_dir import write_error

    out_dir = Path(out_dir)
    notes = notes or CampaignNotes()
    skipped: list[str] = []
    if runs is None:                 # tables and traces are read only for figures not drawn yet
        runs = load_runs(out_dir, skipped, data=False)
    else:
        loaded = [r for r in runs if isinstance(r, RunData)]
        runs = sorted(loaded + load_readable([Path(r) for r in runs if not isinstance(r, RunData)], skipped),
                      key=lambda r: (r.started_at, r.run_id))
    if skipped:
        notes = dataclasses.replace(notes, remarks=[*notes.remarks, *(f"Left out, unreadable: {why}"
                                                                     for why in skipped)])
    try:
        return _write(out_dir, notes, runs)
    except OSError as exc:
        raise write_error(getattr(exc, "filename", None) or out_dir, exc, "the report was not written") from exc


#: Taken (flock) by each report writer in a directory in turn: a campaign starts one after each run.
LOCK_NAME = ".report.lock"


def write_report_in_turn(out_dir: str | Path, notes: CampaignNotes | None = None) -> Path:
    """`write_report(out_dir, notes)` once no other writer is writing that directory's report
    (the writers a campaign starts after its runs queue, and each reads every run there is)."""
    import fcntl

    with open(Path(out_dir) / LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return write_report(out_dir, notes)


def _write(out_dir: Path, notes: CampaignNotes, runs: list[RunData]) -> Path:
    figure_dir = out_dir / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    lines = header(runs, notes) + runs_table(runs, notes, out_dir)
    for run, others in by_procedure(runs):
        lines += procedure_section(run, out_dir, figure_dir, others)
    lines += ["## Units", "", "Values are shown with SI prefixes (µ = 1e-6, n = 1e-9, a = 1e-18); the archive "
              "stores SI (last column). Read any run with "
              "`xarray.open_dataset(path, engine=\"h5netcdf\", group=\"entry/results\")`.", ""]
    path = out_dir / REPORT_NAME
    # A full disk must not leave a half (or empty) report; two writers (a campaign's report
    # writer outliving it, the next campaign's) each write their own temporary file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text("\n".join(lines))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
