"""`nwlab archive compare A B` and `nwlab archive export-qcodes RUN --db FILE`: two runs' results
side by side, and a run's tables into a QCoDeS database (the command line of lab.app.api)."""

from __future__ import annotations

import argparse
import math

from lab.app.cli_errors import reporting


def _errors() -> tuple[type[Exception], ...]:
    """A damaged or unfinished run file, a table the run does not have: one line, exit 2."""
    from lab.app.qcodes_export import QcodesExportError
    from lab.app.report.runs import RunFileError

    return (RunFileError, QcodesExportError)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `compare` and `export-qcodes` to the `nwlab archive` actions."""
    compare = sub.add_parser("compare", help="two runs' results side by side, with units, uncertainties "
                             "and their difference in σ")
    compare.add_argument("a", metavar="A", help="a run file (.h5)")
    compare.add_argument("b", metavar="B", help="another run file (.h5)")
    compare.set_defaults(handler=reporting(_compare, _errors))
    export = sub.add_parser("export-qcodes", help="a run's tables as QCoDeS datasets (for plottr), one per table")
    export.add_argument("file", help="a run file (.h5)")
    export.add_argument("--db", required=True, help="QCoDeS database file (created if missing)")
    export.add_argument("--table", action="append", metavar="NAME", help="export only this table (repeatable)")
    export.add_argument("--experiment", help="experiment name (default: the procedure)")
    export.add_argument("--sample", help="sample name (default: the chip's name)")
    export.set_defaults(handler=reporting(_export, _errors))


def _compare(args: argparse.Namespace) -> int:
    from lab.app.api import compare_runs, open_run

    run_a, run_b = open_run(args.a), open_run(args.b)
    print(comparison_text(compare_runs(run_a, run_b), run_a, run_b))
    return 0


def comparison_text(frame, run_a, run_b) -> str:
    """The comparison as a person reads it: one aligned row per result, SI prefixes, b − a and
    its size in σ; then the parameters that differ."""
    from contracts.units import format_si

    lines = [f"{label}  {run.run_id}  {run.procedure}  {run.status}  {run.path}"
             for label, run in (("A", run_a), ("B", run_b))]
    rows = [("result", "A", "B", "B − A", "in σ")]
    for name, row in frame.iterrows():
        difference = row["difference"]
        rows.append((name, _with_uncertainty(row["a"], row["a_uncertainty"], row["units"], name in run_a.results.index),
                     _with_uncertainty(row["b"], row["b_uncertainty"], row["units"], name in run_b.results.index),
                     ("+" if difference > 0 else "") + format_si(difference, row["units"]) if math.isfinite(difference)
                     else "", f"{row['difference_sigma']:+.2g}" if math.isfinite(row["difference_sigma"]) else ""))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines.append("")
    lines += ["  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(zip(r, widths))).rstrip()
              for r in rows]
    if len(rows) == 1:
        lines.append("(no numeric results in either run)")
    differing = frame.attrs.get("parameters_differing", {})
    lines.append("")
    if differing:
        lines.append("parameters that differ:")
        width = max(map(len, differing))
        for name, (a, b, units) in differing.items():
            lines.append(f"  {name.ljust(width)}  {_parameter(a, units)} → {_parameter(b, units)}")
    else:
        lines.append("parameters: the same")
    lines.append("uncertainty: the standard uncertainty each run archived (else an interval's half-width over "
                 "the normal quantile of its level); in σ = (B − A) / sqrt(u_A² + u_B²)")
    return "\n".join(lines)


def _with_uncertainty(value: float, uncertainty: float, units: str, present: bool) -> str:
    """"36.93 ± 0.012 µA": the value and its uncertainty on one prefix; "-" where the run has no such result."""
    from contracts.units import format_si, prefix_for

    if not present:
        return "-"
    if not (math.isfinite(value) and math.isfinite(uncertainty)):
        return format_si(value, units)
    factor, shown = prefix_for([value], units)
    return f"{value * factor:.4g} ± {uncertainty * factor:.2g} {shown}".rstrip()


def _parameter(value, units: str) -> str:
    import numpy as np

    from contracts.units import format_si

    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    array = np.asarray(value)
    if array.ndim:
        return "[" + ", ".join(format_si(v, units) for v in array.tolist()) + "]"
    return format_si(value.item() if isinstance(value, np.generic) else value, units)


def _export(args: argparse.Namespace) -> int:
    from lab.app.qcodes_export import export_run_tables

    for exported in export_run_tables(args.file, args.db, tables=args.table, experiment=args.experiment,
                                      sample=args.sample):
        print(f"{exported.table}: {exported.rows} rows -> {exported.db} run {exported.captured_run_id} "
              f"(guid {exported.guid})")
    return 0
