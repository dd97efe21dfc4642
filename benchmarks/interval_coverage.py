"""Do the stated intervals mean what they say? Coverage of each fitted figure on the emulator.

Each procedure runs N times on private copies of the emulated station with independent
emulator seeds (validation/coverage.py), reduced parameters (printed); every stated interval is
checked against the emulator's true value at the run's conditions (validation/ground_truth.py,
cached in benchmarks/coverage_truths.json). Per figure: repetitions, covered, the observed
coverage with its exact (Clopper-Pearson) 95 % interval, the claimed level, the exact binomial
test's p-value against it (and against 68 %), the mean interval width. A run that fails, or
gives no interval, is counted as a failure and listed. Ends with one JSON line.

    .ci/env python benchmarks/interval_coverage.py [--repetitions 30] [--only FIGURE_OR_PROCEDURE ...] [--workers 2]
                                          [--log reps.jsonl] [--truths benchmarks/coverage_truths.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file's directory must not be on the path: its name would shadow the `coverage` package
# (numba imports it).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from validation import coverage as cv  # noqa: E402
from validation import ground_truth as gt  # noqa: E402

TRUTHS = Path(__file__).with_name("coverage_truths.json")
#: Seeds start here (the station's own seed is 20261124): repetition k runs with SEED_BASE + k.
SEED_BASE = 1000


def _run(args: tuple) -> cv.Repetition:
    return cv.run_repetition(*args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=30)
    parser.add_argument("--only", nargs="*", default=None,
                        help="figures or procedures (default: all): " + ", ".join(cv.JOBS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed-base", type=int, default=SEED_BASE)
    parser.add_argument("--truths", type=Path, default=TRUTHS, help="cache of the truths (JSON)")
    parser.add_argument("--log", type=Path, default=None, help="append each repetition here as a JSON line")
    parser.add_argument("--from-log", type=Path, default=None,
                        help="no runs: tally the repetitions a --log file holds (against today's truths)")
    args = parser.parse_args()
    jobs = sorted({cv.job_of(name) for name in args.only}) if args.only else list(cv.JOBS)
    wanted = set(args.only or [])
    print(f"coverage: {args.repetitions} repetitions of {', '.join(jobs)}; {args.workers} workers; "
          f"seeds {args.seed_base}..{args.seed_base + args.repetitions - 1}")
    for name in jobs:
        print(f"  {name}: {json.dumps(dict(cv.JOBS[name].parameters))}")
    temperature_k = gt.station_temperature_k()
    print(f"  stage temperature (no cooldown: the cryostat's starting temperature): {temperature_k:.4f} K")

    tasks = [(name, args.seed_base + k) for k in range(args.repetitions) for name in jobs]
    reps: list[cv.Repetition] = []
    began = time.monotonic()
    if args.from_log:
        reps = [cv.Repetition(**json.loads(line)) for line in args.from_log.read_text().splitlines() if line.strip()]
        reps = [r for r in reps if r.job in jobs]
        tasks = []
        print(f"  {len(reps)} repetitions from {args.from_log}")
    with tempfile.TemporaryDirectory(prefix="nwlab-coverage-") as work:
        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers if tasks else 1, maxtasksperchild=10) as pool:
            for rep in pool.imap_unordered(_run, [(name, seed, work) for name, seed in tasks]):
                reps.append(rep)
                if args.log:
                    with args.log.open("a") as log:
                        log.write(json.dumps(dataclasses.asdict(rep), default=float) + "\n")
                elapsed = time.monotonic() - began
                left = elapsed / len(reps) * (len(tasks) - len(reps))
                note = "" if rep.status == "completed" else f"  {rep.status.upper()}: {rep.message.splitlines()[0][:100]}"
                print(f"[{len(reps)}/{len(tasks)}] {rep.job} seed {rep.seed}: {rep.seconds:.1f} s; "
                      f"elapsed {elapsed:.0f} s, about {left:.0f} s left{note}", flush=True)

    cache = gt.TruthCache(args.truths)
    truths: dict[int, dict] = {}

    def truths_for(rep: cv.Repetition) -> dict:
        if id(rep) not in truths:
            truths[id(rep)] = cv.JOBS[rep.job].truth(rep.conditions, cache)
        return truths[id(rep)]

    results = cv.tally(reps, truths_for)
    seconds = {}
    for name in jobs:
        times = sorted(r.seconds for r in reps if r.job == name)
        seconds[name] = times[len(times) // 2] if times else math.nan
    print()
    print(f"{'figure':<26} {'reps':>4} {'cov.':>4} {'observed':>8} {'exact 95 % CI':>15} {'claimed':>7} "
          f"{'p':>7} {'p(68%)':>7} {'mean width':>11} {'truth':>11} failed  method")
    summary = {}
    for name, cov in results.items():
        if wanted and name not in wanted and cv.job_of(name) not in wanted:
            continue
        s = summary[name] = cov.summary()
        if not s["repetitions"]:
            print(f"{name:<26} {0:>4}  no interval in any run ({len(cov.failed)} failed)")
            continue
        print(f"{name:<26} {s['repetitions']:>4} {s['covered']:>4} {s['coverage']:>8.3f} "
              f"{s['coverage_ci95'][0]:>7.3f}-{s['coverage_ci95'][1]:<7.3f} {s['level']:>7.3f} {s['p_value']:>7.3g} "
              f"{s['p_value_vs_68']:>7.2g} {s['mean_width']:>11.4g} {s['truth']:>11.5g} {s['failed']:>6}  "
              f"{'; '.join(s['methods'])[:80]}")
        print(f"{'':<26} values over the seeds: mean - truth = {s['bias']:.4g} ± {s['bias_stderr']:.2g}; "
              f"1.96 x their scatter / mean stated half-width = {s['scatter_over_half_width']:.2f}; "
              f"{s['distinct_values']} distinct values, {s['nan_values']} NaN (interval a bound)")
        verdict = "consistent with" if s["consistent"] else "NOT consistent with"
        print(f"{'':<26} coverage {verdict} the claimed {s['level']:.0%} (exact binomial test, p = {s['p_value']:.3g}); "
              f"against other truths: " + ", ".join(f"{a} {c:.2f}" for a, c in s["coverage_of_alternatives"].items()))
        for seed, value, low, high, truth in cov.misses[:5]:
            print(f"{'':<26} miss: seed {seed} value {value:.6g} [{low:.6g}, {high:.6g}] truth {truth:.6g}")
    failures = [(name, seed, why) for name, cov in results.items() for seed, why in cov.failed]
    if failures:
        print("\nfailures (counted, not covered):")
        for name, seed, why in failures:
            print(f"  {name} seed {seed}: {why}")
    print("\nmedian seconds per repetition: " + ", ".join(f"{n} {s:.1f} s" for n, s in seconds.items()))
    print(json.dumps({"benchmark": "coverage", "repetitions": args.repetitions, "seconds_per_repetition": seconds,
                      "figures": summary, "failures": len(failures)}, default=float))
    return 0 if not failures and all(s.get("consistent", False) for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
