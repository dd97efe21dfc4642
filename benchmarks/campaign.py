"""Wall time of the full characterization campaign on the emulated station, per procedure.

The reference measured in the same run is the campaign's own estimated lab time (the dry
run's sum, what the campaign would take on the real bench): lab time over wall time is the
acceleration the emulator achieved, against the clock's nominal acceleration.

    .ci/env python benchmarks/campaign.py [--station stations/emulated.yaml] [--out DIR] [--set P.N=V ...]
                                          [--budgets shipped|before-issue-12] [--breakdown]

Issue 18 set two targets: <= 15 s at the higher-precision defaults issue 12 asked for, which are
the shipped ones since 2026-12-04 (`--budgets shipped`, the default), and <= 10 s at the defaults
of the day it was filed (`--budgets before-issue-12`). Those procedures have changed since (the
bisection gave way to an adaptive psychometric search that stops at a precision, the refractory
scan to adaptive rounds, the f-I curve got more records and refined currents); what the earlier
defaults are run as here is their trial budgets (BEFORE_ISSUE_12), set on the procedures of today.

With --breakdown, where the wall time went as well: the phases outside the runs (the station's
checks, the dry runs, opening the instruments, the last report) and the chip's physics (the
compiled solver's own time, the SMU settles simulated and drawn from kept outcomes), timed by
wrapping those functions (a few microseconds per call over ~5,000 calls); the compiled kernels'
first calls (numba loading them from its cache); and what each simulated settle started from:
a limit cycle (its change simulated OUTCOMES_KEPT times, then drawn), a chip at rest (its
history, the current trapped in its loops, makes every such settle its own), or neither.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from lab.app.campaign import run_campaign
from contracts.files.station import read_station
from lab.app.run_cli import parse_sets

#: Issue 18's targets (s) by trial budgets: the shipped defaults (issue 12's higher precision), and
#: those of the day the issue was filed.
TARGETS_S = {"shipped": 15.0, "before-issue-12": 10.0}
#: The defaults before issue 12 as trial budgets of today's procedures (`--set` values): a
#: strength-duration threshold by 8 bisection steps of 3 captures (24 captures a width), the
#: refractory scan of 12 spacings x 4 pairs with nothing after it, 2 records per f-I current and
#: no refined currents (git show fc661cb:procedures/strength_duration.py, refractory.py,
#: firing_rate.py).
BEFORE_ISSUE_12 = {"strength_duration": {"trials_max": 24}, "refractory": {"spacings": 12, "trials_max": 48},
                   "firing_rate": {"captures": 2, "refine_steps": 0}}


class Breakdown:
    """Wall time and calls of the functions a campaign's time is split by (--breakdown)."""

    #: (label, module, owner within it or None, function name)
    TIMED = (
        ("station checks", "lab.app.campaign", None, "load_station"),
        ("dry runs", "lab.app.campaign", None, "plan_campaign"),
        ("opening the instruments", "lab.execution.instruments", None, "open_instruments"),
        ("last report", "lab.app.campaign", None, "_finish"),
        ("instrument snapshots", "lab.execution.instruments", "StationInstruments", "snapshot"),
        ("SMU settles", "sim_backend.bench.world", "World", "_settle"),
        ("solver (compiled)", "sim_backend.physics.transient", None, "advance"),
    )

    def __init__(self) -> None:
        import importlib

        self.wall_s: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.settles_drawn = 0
        for label, module_name, owner_name, name in self.TIMED:
            module = importlib.import_module(module_name)
            owner = getattr(module, owner_name) if owner_name else module
            setattr(owner, name, self._timed(label, getattr(owner, name)))
        from sim_backend.bench.steady_outcomes import SteadyOutcomes

        drawn = SteadyOutcomes.drawn

        @functools.wraps(drawn)
        def counted(outcomes, change, rng):
            outcome = drawn(outcomes, change, rng)
            self.settles_drawn += outcome is not None
            return outcome

        SteadyOutcomes.drawn = counted
        self.settle_starts: Counter[str] = Counter()
        self._count_settle_starts()
        self._time_kernel_loads()

    def _count_settle_starts(self) -> None:
        from sim_backend.bench.world import World

        settle = World._settle

        @functools.wraps(settle)
        def classified(world, chip, *args, **kwargs):
            drawn_before = self.settles_drawn
            start = ("from a limit cycle" if chip.on_cycle_of() is not None
                     else "from rest" if chip.settled and not chip.latched else "other")
            result = settle(world, chip, *args, **kwargs)
            if self.settles_drawn == drawn_before:
                self.settle_starts[start] += 1
            return result

        World._settle = classified

    def _time_kernel_loads(self) -> None:
        from numba.core.dispatcher import _DispatcherBase

        self.kernel_loads_s: dict[str, float] = {}
        compile_for_args = _DispatcherBase._compile_for_args

        @functools.wraps(compile_for_args)
        def timed(dispatcher, *args, **kwargs):
            began = time.perf_counter()
            try:
                return compile_for_args(dispatcher, *args, **kwargs)
            finally:
                name = dispatcher.py_func.__qualname__
                self.kernel_loads_s[name] = self.kernel_loads_s.get(name, 0.0) + time.perf_counter() - began

        _DispatcherBase._compile_for_args = timed

    def _timed(self, label: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.wall_s[label] += time.perf_counter() - began
                self.calls[label] += 1
        return timed

    def report(self) -> dict:
        for label, *_ in self.TIMED:
            print(f"  {label:<26}{self.wall_s[label]:>8.2f} s  {self.calls[label]:>6} calls")
        simulated = self.calls["SMU settles"] - self.settles_drawn
        print(f"  SMU settles simulated {simulated}, drawn from kept outcomes {self.settles_drawn}")
        print("  simulated settles by start: " + ", ".join(f"{k} {v}" for k, v in self.settle_starts.most_common()))
        loads = sorted(self.kernel_loads_s.items(), key=lambda kv: -kv[1])
        print(f"  compiled kernels' first calls {sum(self.kernel_loads_s.values()):.2f} s: "
              + ", ".join(f"{k} {v:.3f}" for k, v in loads[:5]))
        return {"wall_s": {k: round(v, 3) for k, v in self.wall_s.items()}, "calls": dict(self.calls),
                "settles_simulated": simulated, "settles_drawn": self.settles_drawn,
                "simulated_settle_starts": dict(self.settle_starts),
                "kernel_first_calls_s": {k: round(v, 3) for k, v in loads}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--station", default="stations/emulated.yaml")
    parser.add_argument("--out", help="keep the archives and report here (default: a temporary directory)")
    parser.add_argument("--set", action="append", default=[], metavar="PROCEDURE.NAME=VALUE")
    parser.add_argument("--budgets", choices=sorted(TARGETS_S), default="shipped",
                        help="the shipped defaults, or the trial budgets of the defaults before issue 12")
    parser.add_argument("--breakdown", action="store_true", help="time the phases and the physics as well")
    args = parser.parse_args()
    overrides = parse_sets(args.set, dotted=True)
    if args.budgets == "before-issue-12":
        overrides = {name: {**BEFORE_ISSUE_12.get(name, {}), **overrides.get(name, {})}   # --set has the last word
                     for name in BEFORE_ISSUE_12.keys() | overrides.keys()}
    target_s = TARGETS_S[args.budgets]
    breakdown = Breakdown() if args.breakdown else None
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="nwlab-campaign-"))
    try:
        began = time.perf_counter()
        outcome = run_campaign(args.station, out, show_progress=False, overrides=overrides)
        wall_s = time.perf_counter() - began
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    acceleration = read_station(args.station).clock_acceleration
    lab_s = outcome.estimated_lab_time_s
    # Before the first run (imports, station checks, dry runs, opening the instruments), between
    # runs, and the wait for the last report after the last run.
    outside_runs_s = wall_s - sum(outcome.per_procedure_wall_s.values())
    print(f"{'procedure':<20}{'status':<12}{'wall s':>9}")
    for name, run in outcome.outcomes.items():
        print(f"{name:<20}{run.exit_status:<12}{outcome.per_procedure_wall_s.get(name, float('nan')):>9.2f}")
    for name, why in outcome.not_run:
        print(f"{name:<20}{'not run':<12}{'':>9}  {why}")
    print(f"{'outside the runs':<32}{outside_runs_s:>9.2f}")
    print(f"campaign wall time {wall_s:.1f} s at the {args.budgets} budgets (target {target_s:.0f} s); "
          f"estimated lab time {lab_s:.1f} s; "
          f"achieved acceleration {lab_s / wall_s:.1f}x (clock nominal {acceleration:g}x)")
    split = {}
    if breakdown is not None:
        print("where the time went (wall s, inclusive: the settles hold most of the solver's time):")
        split = {"breakdown": breakdown.report()}
    print(json.dumps({"benchmark": "campaign", "wall_s": round(wall_s, 2),
                      "per_procedure_s": {k: round(v, 2) for k, v in outcome.per_procedure_wall_s.items()},
                      "outside_runs_s": round(outside_runs_s, 2),
                      "budgets": args.budgets, "overrides": overrides,
                      "target_s": target_s, "met": wall_s <= target_s, "estimated_lab_s": round(lab_s, 1),
                      "acceleration": round(lab_s / wall_s, 1), "all_completed": outcome.all_completed, **split}))


if __name__ == "__main__":
    main()
