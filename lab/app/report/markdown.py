"""The campaign report: `report.md` (with its PNG figures) and `report.html` (self-contained, the
same content) written from the archived runs.

Everything in it is read back from the run files, so the report of a directory of runs can be
rebuilt at any time (`write_report(out_dir)`); what only the campaign knows — procedures it did
not run and why — comes in a `CampaignNotes`.

A directory may hold several runs of a procedure (a resumed campaign, a procedure rerun with
`--only`): the report has one section per procedure, showing its latest completed run (or, if
none completed, its latest run) in full and listing the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shlex
from urllib.parse import quote
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lab.app.report import fig_energy, fig_excitability, fig_iv
from lab.app.report.document import Block, Bullets, Heading, Image, Paragraph, Quote, Table, relative, to_markdown
from lab.app.report.html import REPORT_HTML_NAME, run_anchor, to_html, write_atomically
from lab.app.report.plots import Figure
from lab.app.report.runs import RunData, archived_mapping, load_readable, load_run, load_runs
from lab.app.report.summary import cooldown_account, summary_blocks
from lab.app.report.values import companions, show

REPORT_NAME = "report.md"
FIGURES: dict[str, tuple[Callable[[RunData, Path], list[Figure]], ...]] = {
    "cooldown": (fig_iv.cooldown,),
    "iv_sweep": (fig_iv.iv_sweep,),
    "strength_duration": (fig_excitability.strength_duration,),
    "refractory": (fig_excitability.refractory,),
    "firing_rate": (fig_excitability.firing_rate,),
    "energy_per_spike": (fig_energy.spike_traces, fig_energy.energy_histogram),
    "synaptic_transfer": (fig_excitability.synaptic_transfer,),
    "synaptic_energy": (fig_energy.synaptic_energy,),
    "efficiency": (fig_energy.efficiency,),
}


@dataclass
class CampaignNotes:
    """What the campaign knows besides the archives."""
    station_path: str = ""
    command: str = ""                                              # how to reproduce it
    not_run: list[tuple[str, str]] = field(default_factory=list)   # (procedure, why)
    remarks: list[str] = field(default_factory=list)
    estimated_lab_time_s: float = math.nan
    wall_time_s: float = math.nan


def results_table(run: RunData) -> list[Block]:
    """Every result of the run: value, interval at its level, standard uncertainty, spread, unit
    and method (footnoted); text results listed below it."""
    hidden = companions(run.results)
    rows, flagged, methods, texts = [], set(), {}, []
    for name, quantity in run.results.items():
        if quantity.is_text:
            texts.append(f"`{name}`: {quantity.value}")
            continue
        if name in hidden:
            continue
        shown = show(name, quantity, run)
        if shown.missing:
            flagged.add(len(rows))
        if shown.missing or shown.method.startswith(("exact", "given")):
            method = f"**{shown.method}**" if shown.missing else shown.method
        else:
            number = methods.setdefault(shown.method, len(methods) + 1)
            method = f"[{number}]"
        interval = f"{shown.interval} ({shown.level})" if shown.interval and shown.level else shown.interval
        rows.append((f"`{name}`", shown.value, interval, shown.standard, shown.spread, shown.unit, method,
                     quantity.units))
    if not rows:
        rows.append(("(no results)", "", "", "", "", "", "", ""))
    blocks: list[Block] = [Table(RESULT_HEADER, tuple(rows), "results", frozenset(flagged))]
    if methods:
        blocks.append(Paragraph("Methods: " + "; ".join(f"[{k}] {m}" for m, k in methods.items()) + "."))
    if texts:
        blocks.append(Bullets(tuple(texts)))
    return blocks


RESULT_HEADER = ("result", "value", "interval (level)", "standard uncertainty", "spread (σ)", "unit", "method",
                 "SI unit")


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


def header(runs: Sequence[RunData], notes: CampaignNotes) -> list[Block]:
    first = runs[0] if runs else None
    station = archived_mapping(first.station_text if first else "")
    chip_name = archived_mapping(first.chip_text if first else "").get("name", "?")
    seeds = sorted({r.emulator_seed for r in runs if r.emulator_seed is not None})
    completed = sum(r.status == "completed" for r in runs)
    items = [
        f"**Station:** {station.get('station', '?')} (`{notes.station_path or first.metadata.get('station', '?') if first else '?'}`)",
        f"**Chip:** {chip_name} (chip file `{station.get('chip', '?')}`)",
        f"**Bench:** {first.bench if first else '?'}" + (f"; emulator seed {', '.join(map(str, seeds))}" if seeds else ""),
        f"**Software:** {', '.join(dict.fromkeys(r.software_version for r in runs)) or '?'}",
        f"**Started:** {first.started_at if first else '-'}",
        f"**Ended:** {max((r.ended_at for r in runs), default='-')}",
        f"**Runs:** {completed} of {len(runs)} completed"
        + (f"; {len(notes.not_run)} procedure(s) not run" if notes.not_run else ""),
    ]
    if math.isfinite(notes.estimated_lab_time_s):
        items.append(f"**Lab time (estimated):** {notes.estimated_lab_time_s:.1f} s"
                     + (f"; wall time {notes.wall_time_s:.1f} s" if math.isfinite(notes.wall_time_s) else ""))
    if notes.command:
        items.append(f"**How to reproduce:** `{notes.command}`")
    return [Heading(1, TITLE), Bullets(tuple(items))]


TITLE = "Characterization campaign report"


def archive_link(run: RunData, out_dir: Path) -> str:
    """The run file by its path relative to the report (a link in both renderings)."""
    path = relative(run.path, out_dir)
    return f"[`{path}`]({quote(path)})"


def runs_table(runs: Sequence[RunData], notes: CampaignNotes, out_dir: Path) -> list[Block]:
    rows = [(run.procedure, f"**{run.status}**", archive_link(run, out_dir), run.message.replace("\n", " "))
            for run in runs]
    rows += [(procedure, "**not run**", "—", why) for procedure, why in notes.not_run]
    blocks: list[Block] = [Heading(2, "Runs"), Table(("procedure", "exit status", "archive", "message"), tuple(rows))]
    return blocks + ([Bullets(tuple(notes.remarks))] if notes.remarks else [])


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


def other_runs(others: Sequence[RunData], out_dir: Path) -> list[Block]:
    if not others:
        return []
    items = []
    for run in others:
        message = run.message.replace("\n", " ")
        items.append(f"**{run.status}**: {archive_link(run, out_dir)}, {run.started_at} → {run.ended_at}"
                     + (f" — {message}" if message else ""))
    return [Paragraph(f"Other runs of {others[0].procedure} in this directory (newest first):"), Bullets(tuple(items))]


#: Beside a run's figures: which run file they were drawn from, and their titles and captions.
DRAWN_NAME = "figures.json"


#: The report's figures, beside it: one folder per run.
FIGURES_DIR_NAME = "figures"


def run_figures_dir(out_dir: Path, run: RunData) -> Path:
    """Where a run's figures go: two runs of one procedure keep their own."""
    return out_dir / FIGURES_DIR_NAME / run.run_id


def _source(run: RunData) -> dict[str, object] | None:
    """The run file as figures.json names it (name, size, modification time); None if unreadable."""
    try:
        stat = run.path.stat()
    except OSError:
        return None
    return {"archive": run.path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def drawn_figures(run: RunData, run_figures: Path) -> list[Figure] | None:
    """The run's figures if they are drawn already, from this very run file; else None."""
    return _drawn(run_figures, _source(run))


def _drawn(run_figures: Path, source: dict[str, object] | None) -> list[Figure] | None:
    try:
        drawn = json.loads((run_figures / DRAWN_NAME).read_text())
        listed = [Figure(run_figures / f["file"], f["title"], f["caption"]) for f in drawn["figures"]]
        if source is not None and drawn["source"] == source and all(f.path.is_file() for f in listed):
            return listed
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def figures(run: RunData, run_figures: Path) -> list[Figure]:
    """The run's figures, drawn once: a finished run file does not change, so a report rewritten
    after every run of a campaign (or by a resumed one) draws only the runs it has not drawn yet.
    `figures.json` beside them names the run file (size, modification time) they came from."""
    source = _source(run)
    listed = _drawn(run_figures, source)
    if listed is not None:
        return listed
    drawn_path = run_figures / DRAWN_NAME
    run_figures.mkdir(parents=True, exist_ok=True)
    if not run.with_data:            # read without its tables and traces: the figures need them
        run = load_run(run.path)
    made = [figure for draw in FIGURES.get(run.procedure, ()) for figure in draw(run, run_figures)]
    if source is not None:
        tmp = drawn_path.with_name(f".{DRAWN_NAME}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({"source": source, "figures": [
                {"file": f.path.name, "title": f.title, "caption": f.caption} for f in made]}))
            tmp.replace(drawn_path)
        except BaseException:         # a full disk, or a writer stopped (SIGTERM) right here
            tmp.unlink(missing_ok=True)
            raise
    return made


def procedure_section(run: RunData, out_dir: Path, others: Sequence[RunData] = (),
                      later: Sequence[RunData] = ()) -> list[Block]:
    """A procedure's section: its shown run's results, figures and how to reproduce it (`later`:
    the runs that started after it, whose conditions the cooldown's account mentions)."""
    blocks: list[Block] = [
        Heading(2, f"{run.procedure} — {run.status}", anchor=run_anchor(run.run_id)),
        Paragraph(f"Run `{run.run_id}`, archive {archive_link(run, out_dir)}, {run.started_at} → {run.ended_at}"
                  + (f"; stage at {run.stage_temperature_k:.3f} K as it started (instrument snapshot)."
                     if math.isfinite(run.stage_temperature_k) else "."))]
    if run.message:             # why it failed, or what a completed run met and dealt with
        blocks.append(Quote(run.message.replace("\n", " ")))
    blocks += other_runs(others, out_dir)
    blocks += results_table(run)
    drawn = figures(run, run_figures_dir(out_dir, run))
    if run.procedure == "cooldown":             # what the temperature log shows, read from it
        if not run.with_data:
            run = load_run(run.path)
        blocks.append(Paragraph(cooldown_account(run, later)))
    blocks += [Image(figure.path, figure.title, figure.caption) for figure in drawn]
    station = run.metadata.get("station", "STATION")
    blocks.append(Paragraph(f"Reproduce this run alone: `nwlab run {run.procedure} --station {station} --out DIR "
                            f"{_set_arguments(run)}".rstrip() + "`"))
    return blocks


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


#: Taken (flock) by each report writer in a directory in turn: a campaign's writer, one that
#: outlived an earlier campaign there, a report the campaign writes itself at its end.
LOCK_NAME = ".report.lock"


def write_report_in_turn(out_dir: str | Path, notes: CampaignNotes | None = None, *,
                         wait_s: float | None = None) -> Path:
    """`write_report(out_dir, notes)` once no other writer is writing that directory's report
    (each reads every run there is). With `wait_s`, written anyway once that long has passed (a
    campaign stopped by a signal ends promptly; each writer's files are replaced whole, so two
    at once leave one complete report)."""
    with report_turn(out_dir, wait_s=wait_s):
        return write_report(out_dir, notes)


@contextlib.contextmanager
def report_turn(out_dir: str | Path, *, wait_s: float | None = None) -> Iterator[int]:
    """This writer's turn at the directory's report and figures (write_report_in_turn); yields
    the lock file's descriptor."""
    from lab.archive import file_locks

    with open(Path(out_dir) / LOCK_NAME, "a") as lock:
        file_locks.lock(lock.fileno(), wait_s=wait_s)
        yield lock.fileno()


def report_blocks(out_dir: Path, notes: CampaignNotes, runs: list[RunData]) -> list[Block]:
    """The whole report's content, in order: header, summary, runs, one section per procedure, units."""
    (out_dir / FIGURES_DIR_NAME).mkdir(parents=True, exist_ok=True)
    entries = by_procedure(runs)
    try:
        summary = summary_blocks([shown for shown, _ in entries])
    except Exception as exc:  # noqa: BLE001 - the runs' sections must still be written; the report says why
        summary = [Heading(2, "Summary: key figures"),
                   Paragraph(f"**The summary could not be computed:** {type(exc).__name__}: {exc}")]
    blocks = header(runs, notes) + summary + runs_table(runs, notes, out_dir)
    for run, others in entries:
        later = [r for r in runs if r.started_at > run.started_at]
        blocks += procedure_section(run, out_dir, others, later)
    blocks += [Heading(2, "Units"), Paragraph(
        "Values are shown with SI prefixes (µ = 1e-6, n = 1e-9, a = 1e-18); the archive stores SI (last column). "
        "Each value has as many digits as its uncertainty supports: the standard uncertainty (or the interval's "
        "half-width) rounded to two significant digits, the value to the same decimal place. Read any run with "
        "`xarray.open_dataset(path, engine=\"h5netcdf\", group=\"entry/results\")`.")]
    return blocks


def _write(out_dir: Path, notes: CampaignNotes, runs: list[RunData]) -> Path:
    blocks = report_blocks(out_dir, notes, runs)
    # A full disk must not leave a half (or empty) report; two writers (a campaign's report
    # writer outliving it, the next campaign's) each write their own temporary files.
    path = out_dir / REPORT_NAME
    write_atomically(out_dir / REPORT_HTML_NAME, to_html(blocks, TITLE))
    write_atomically(path, to_markdown(blocks, out_dir))
    return path
