"""`nwlab sweep SPEC --out DIR` and `nwlab sweep report DIR` (docs/design-sweeps.md): the sweep
itself is the `sweeps` package's; its report is a section of the application's report
(lab/app/report/sweep.py)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `nwlab sweep` to the parser."""
    sweep = subparsers.add_parser(
        "sweep", help="design sweep of a chip file on Dask (or `nwlab sweep report DIR`)",
        description="Run a sweep spec (nwlab-sweep/1) into DIR, resuming what DIR already holds; or "
                    "`nwlab sweep report DIR` to draw its maps, curves and Pareto view.")
    sweep.add_argument("spec", metavar="SPEC.yaml|report", help="the sweep spec, or `report`")
    sweep.add_argument("directory", nargs="?", metavar="DIR", help="(report) the sweep directory")
    sweep.add_argument("--out", help="sweep directory (created, or resumed when it holds this spec's points)")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a running Dask scheduler")
    where.add_argument("--scheduler-file", metavar="FILE", help="a Dask scheduler file (dask scheduler "
                       "--scheduler-file FILE)")
    where.add_argument("--in-process", action="store_true", help="run every point in this process, without Dask")
    sweep.add_argument("--workers", type=int, default=None, help="worker processes of the embedded LocalCluster "
                       "(default: one per CPU)")
    sweep.add_argument("--batch-points", type=int, default=None, help="points per Dask task (default: the spec's, "
                       "else about 8 tasks per worker thread, at most 256 points)")
    sweep.add_argument("--flush-s", type=float, default=2.0, help="longest time finished points wait before they "
                       "are written to DIR (default 2 s)")
    sweep.add_argument("--target", help="design search: METRIC=VALUE±TOLERANCE, ... (e.g. "
                       "\"refractory_s=10e-9±1e-9, threshold_a=25e-6±2e-6\")")
    sweep.add_argument("--candidates", type=int, default=5, help="best candidates reported by --target")
    sweep.add_argument("--search-generations", type=int, default=6, help="generations of the differential "
                       "evolution that refines --target from the sweep's best points (0: rank the sweep's only)")
    sweep.add_argument("--pareto", metavar="METRIC_X,METRIC_Y", help="(report) the two metrics of the Pareto view")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=sweep_command)


def fail(message: str) -> int:
    print(f"nwlab sweep: {message}", file=sys.stderr)
    return 2


def sweep_command(args: argparse.Namespace) -> int:
    if args.spec == "report":
        return report_command(args)
    from sweeps.execute import Executor, run_sweep
    from sweeps.spec import SweepSpecError, parse_targets, read_spec
    from sweeps.store import SweepDirError

    if args.directory is not None:
        return fail(f"unexpected argument {args.directory!r} (the sweep directory is --out DIR)")
    if not args.out:
        return fail("--out DIR is required")
    if args.workers is not None and args.workers < 1:
        return fail(f"--workers {args.workers}: must be at least 1")
    if args.batch_points is not None and args.batch_points < 1:
        return fail(f"--batch-points {args.batch_points}: must be at least 1")
    if args.search_generations < 0 or args.candidates < 1:
        return fail("--search-generations must be 0 or more and --candidates 1 or more")
    try:
        spec = read_spec(args.spec)
        targets = parse_targets(args.target) if args.target else spec.targets
        for name, _, _ in targets:
            if name not in spec.metrics:
                raise SweepSpecError(f"--target: {name!r} is not one of the spec's metrics "
                                     f"({', '.join(spec.metrics)})")
    except SweepSpecError as exc:
        return fail(str(exc))
    try:
        executor = Executor(scheduler=args.scheduler, scheduler_file=args.scheduler_file, workers=args.workers,
                            in_process=args.in_process)
    except (OSError, TimeoutError, ValueError) as exc:
        where = args.scheduler or args.scheduler_file or "a LocalCluster"
        return fail(f"cannot reach {where}: {exc}")
    if spec.measure == "procedures":
        import functools
        from pathlib import Path

        from lab.app.sweep_slow import evaluate_point_slow

        executor.evaluate = functools.partial(evaluate_point_slow, runs_dir=str(Path(args.out).resolve() / "runs"))
    try:
        summary = run_sweep(spec, args.out, executor, batch_points=args.batch_points,
                            progress=not args.no_progress, flush_s=args.flush_s)
        rate = summary.computed / summary.elapsed_s if summary.elapsed_s > 0 else float("nan")
        print(f"nwlab sweep: {summary.computed} points computed ({summary.failed} failed), {summary.already_done} "
              f"already done, in {summary.elapsed_s:.1f} s ({rate:.1f} points/s); results {summary.dataset_path}")
        if targets:
            search(spec, targets, executor, summary, args)
    except SweepDirError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print("nwlab sweep: interrupted; finished points are kept, run the same command to resume",
              file=sys.stderr)
        return 130
    finally:
        executor.close()
    print(json.dumps(summary.as_dict()))
    return 0


def search(spec, targets, executor, summary, args) -> None:
    """Rank the sweep's points against the targets, refine from the best, print the candidates and
    write every point the refinement evaluated to DIR/search.nc."""
    from pathlib import Path

    import xarray as xr

    from sweeps.search import (
        best_candidates,
        candidates_from,
        format_candidates,
        refine,
        search_dataset,
    )

    with xr.open_dataset(summary.dataset_path, engine="h5netcdf") as data:
        swept = candidates_from(data.load(), spec)
    ranked = best_candidates(swept, targets, max(args.candidates, 5 * len(spec.parameters)))
    print(format_candidates(ranked[:args.candidates], spec, targets, "nwlab sweep: best of the sweep's points"))
    if args.search_generations == 0 or not ranked:
        return
    evaluated = refine(spec, executor, targets, ranked, generations=args.search_generations,
                       first_index=summary.points)
    path = Path(args.out) / "search.nc"
    search_dataset(spec, evaluated).to_netcdf(path, engine="h5netcdf")
    best = best_candidates(list(ranked) + evaluated, targets, args.candidates)
    print(format_candidates(best, spec, targets, f"nwlab sweep: best candidates after the search "
                                                 f"({len(evaluated)} more points, {path})"))


def report_command(args: argparse.Namespace) -> int:
    from lab.app.report.sweep import ReportError, write_report

    if not args.directory:
        return fail("report needs the sweep directory: nwlab sweep report DIR")
    try:
        pareto = tuple(args.pareto.split(",")) if args.pareto else None
        if pareto is not None and len(pareto) != 2:
            raise ReportError(f"--pareto {args.pareto!r}: give two metrics, METRIC_X,METRIC_Y")
        html = write_report(args.directory, pareto=pareto)
    except ReportError as exc:
        return fail(str(exc))
    print(f"nwlab sweep report: {html}")
    return 0
